import { createInterface } from 'node:readline';

/** Asks on stderr (stdout stays for results); `hidden` echoes nothing, for passwords. */
export function ask(question: string, options: { hidden?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const output = process.stderr;
    const rl = createInterface({ input: process.stdin, output, terminal: true });
    if (options.hidden) {
      // readline echoes through _writeToOutput; write only the question and the final newline.
      const writable = rl as unknown as { _writeToOutput: (text: string) => void };
      writable._writeToOutput = (text: string) => {
        if (text.includes(question) || text === '\r\n' || text === '\n') output.write(text);
      };
    }
    rl.on('SIGINT', () => {
      rl.close();
      output.write('\n');
      reject(Object.assign(new Error('cancelled'), { name: 'PromptCancelled' }));
    });
    rl.question(question, (answer) => {
      rl.close();
      if (options.hidden) output.write('\n');
      resolve(answer);
    });
  });
}

/** All of standard input, for --password-stdin. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}
