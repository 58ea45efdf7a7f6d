// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI colour codes is the point
const ansi = /\u001B\[[0-9;]*m/g;

/** Width on screen: colour codes take no room. */
const visibleLength = (text: string) => text.replace(ansi, '').length;

export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
}

/**
 * Aligned columns for a person at a terminal; tab-separated values when stdout is not a TTY, so
 * scripts can `cut -f`.
 */
export function renderTable<Row>(
  rows: readonly Row[],
  columns: readonly Column<Row>[],
  options: { tty: boolean },
): string {
  const cells = rows.map((row) => columns.map((column) => column.value(row)));
  if (!options.tty) {
    return `${[columns.map((column) => column.header), ...cells].map((line) => line.join('\t')).join('\n')}\n`;
  }
  const widths = columns.map((column, index) =>
    Math.max(column.header.length, ...cells.map((line) => visibleLength(line[index] ?? ''))),
  );
  const format = (line: string[]) =>
    line
      .map((cell, index) => cell + ' '.repeat(Math.max(0, (widths[index] ?? 0) - visibleLength(cell))))
      .join('  ')
      .trimEnd();
  return `${[format(columns.map((column) => column.header.toUpperCase())), ...cells.map(format)].join('\n')}\n`;
}
