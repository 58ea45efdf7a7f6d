const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'] as const;

/** Bytes for people, in SI units (1 kB = 1000 B) with one decimal: `950 B`, `1.5 kB`, `12.0 MB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
