/**
 * Getting a password without it ever being a command-line argument (which `ps` shows to
 * every user of the machine): typed twice at a terminal with echo off, or the first line
 * of standard input (`--password-stdin`, for scripts).
 */
import { CommandError, UsageError } from './errors.ts';

/** The first line of `input`, without its line ending. */
export async function readPasswordLine(input: NodeJS.ReadableStream = process.stdin): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.includes('\n')) break;
  }
  const newline = text.indexOf('\n');
  const line = (newline === -1 ? text : text.slice(0, newline)).replace(/\r$/, '');
  if (line === '') throw new CommandError('no password on standard input (expected it on the first line)');
  return line;
}

/** Reads one line from the terminal with echo off; undefined when the user presses Ctrl-D. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  const out = process.stderr;
  return new Promise((resolve, reject) => {
    let value = '';
    stdin.setRawMode(true); // before the prompt, so nothing typed after it is echoed
    out.write(prompt);
    stdin.resume();
    stdin.setEncoding('utf8');
    const finish = (error?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      out.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new CommandError('interrupted'));
        if (ch === '\u0004') return finish(value === '' ? new CommandError('no password given') : undefined);
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** A new password: from stdin's first line, or typed twice at the terminal. */
export async function readNewPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) return readPasswordLine();
  if (!process.stdin.isTTY) {
    throw new UsageError('standard input is not a terminal: pass --password-stdin and write the password to it', 'user');
  }
  const first = await promptHidden('Password: ');
  if (first === '') throw new CommandError('the password is empty');
  const second = await promptHidden('Repeat password: ');
  if (first !== second) throw new CommandError('the passwords do not match');
  return first;
}
