const unitMs = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * `90d`, `24h`, `30m`, `45s` or `0` in milliseconds; undefined when the text is none of these.
 * Whole numbers only: a duration is typed by people on a command line, not computed.
 */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,6})([smhd])?$/.exec(text.trim());
  if (!match) return undefined;
  const count = Number(match[1]);
  const unit = match[2] as keyof typeof unitMs | undefined;
  if (unit === undefined) return count === 0 ? 0 : undefined;
  return count * unitMs[unit];
}
