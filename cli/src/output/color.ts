const codes = { red: [31, 39], green: [32, 39], yellow: [33, 39], dim: [2, 22], bold: [1, 22] } as const;

export type Style = keyof typeof codes;

/** Colour only for a person at a terminal: never with NO_COLOR, --no-color, --json, or without a TTY. */
export function colorEnabled(options: { color: boolean; json: boolean; stream: NodeJS.WriteStream }): boolean {
  const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  return options.color && !options.json && !noColor && options.stream.isTTY === true;
}

export function paint(enabled: boolean, style: Style, text: string): string {
  if (!enabled) return text;
  const [open, close] = codes[style];
  return `\u001B[${open}m${text}\u001B[${close}m`;
}
