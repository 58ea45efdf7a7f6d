/**
 * One record as `label  value` lines aligned for a terminal, or `label<TAB>value` when stdout is not
 * a TTY, so scripts can `cut -f2` (the same rule as tables).
 */
export function renderFields(fields: readonly (readonly [string, string])[], options: { tty: boolean }): string {
  if (!options.tty) return fields.map(([label, value]) => `${label}\t${value}`).join('\n');
  const width = Math.max(0, ...fields.map(([label]) => label.length));
  return fields.map(([label, value]) => `${label.padEnd(width)}  ${value}`.trimEnd()).join('\n');
}
