/** What a scripted client sent and received, printed when one of its expectations fails. */

export type TranscriptDirection = 'send' | 'recv' | 'note';

export interface TranscriptEntry {
  /** Milliseconds since the client connected. */
  at: number;
  direction: TranscriptDirection;
  text: string;
}

const ARROWS: Record<TranscriptDirection, string> = { send: 'C→S', recv: 'S→C', note: '---' };
const MAX_LINE = 2000;

export class Transcript {
  readonly entries: TranscriptEntry[] = [];
  readonly name: string;
  private readonly started = performance.now();

  constructor(name: string) {
    this.name = name;
  }

  add(direction: TranscriptDirection, text: string): void {
    this.entries.push({ at: Math.round(performance.now() - this.started), direction, text });
  }

  /** The last `limit` entries, one per line, long ones shortened. */
  format(limit = 60): string {
    const shown = this.entries.slice(-limit);
    const lines = shown.map(({ at, direction, text }) => {
      const line = text.length > MAX_LINE ? `${text.slice(0, MAX_LINE)}… (${text.length} chars)` : text;
      return `  ${String(at).padStart(6)}ms ${ARROWS[direction]} ${line}`;
    });
    const omitted = this.entries.length - shown.length;
    const head = `transcript of client '${this.name}'${omitted > 0 ? ` (first ${omitted} entries omitted)` : ''}:`;
    return [head, ...lines].join('\n');
  }
}

/** Printable form of raw bytes: UTF-8 when it is valid text, else hex. */
export function describeBytes(data: Buffer | string): string {
  if (typeof data === 'string') return data;
  const text = data.toString('utf8');
  return Buffer.from(text, 'utf8').equals(data) && !/[\x00-\x08\x0b\x0c\x0e-\x1f]/.test(text) ? text : `<bytes ${data.toString('hex')}>`;
}
