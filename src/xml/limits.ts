/**
 * The maxStanzaBytes limit of the stream tokenizer (src/xml/parser.ts). It counts the input
 * bytes of the region being read — the prolog and stream header, or one depth-1 construct
 * (a stanza, `</stream:stream>`, a stray `<!`) — across chunks, so that nothing is buffered
 * beyond the limit plus one chunk. The tokenizer works on decoded text, so positions are
 * string offsets; this converts them to bytes, only when it has to: offsets are bytes in an
 * ASCII chunk, and a UTF-16 code unit is at most 3 bytes, so most stanzas need no counting.
 */
import { utf8Length } from './chars.ts';

export class SizeLimit {
  readonly max: number;
  /** The current chunk's string is ASCII: its offsets are byte offsets. */
  private ascii = true;
  /** Bytes the current chunk's string decodes from. */
  private chunkBytes = 0;
  /** A region is being counted. */
  private on = true;
  /** Where the region starts in the current chunk's string (0 if it began earlier). */
  private start = 0;
  /** Bytes of the region in earlier chunks. */
  private counted = 0;

  constructor(max: number) {
    this.max = max;
  }

  /** A new stream: its prolog and header are the first region. */
  reset(): void {
    this.on = true;
    this.start = 0;
    this.counted = 0;
  }

  /** The string the tokenizer reads next, decoded from `bytes` bytes. */
  chunk(s: string, bytes: number): void {
    this.ascii = s.length === bytes;
    this.chunkBytes = bytes;
  }

  /** A region starts at s[i]. */
  begin(i: number): void {
    this.on = true;
    this.start = i;
    this.counted = 0;
  }

  /** The region ends before s[end]: whether it was within the limit. */
  end(s: string, end: number): boolean {
    this.on = false;
    if (this.counted + 3 * (end - this.start) <= this.max) return true;
    return this.counted + this.bytes(s, this.start, end) <= this.max;
  }

  /** Whether s[pos] lies past the limit, in the region being counted. */
  passed(s: string, pos: number): boolean {
    return this.on && this.counted + this.bytes(s, this.start, pos) > this.max;
  }

  /** The chunk was read up to s[end]: carries the open region over; false if it is too big. */
  carry(s: string, end: number): boolean {
    if (!this.on) return true;
    this.counted += this.bytes(s, this.start, end);
    this.start = 0;
    return this.counted <= this.max;
  }

  /** UTF-8 length of s[from, to): counted on whichever side of the chunk is shorter. */
  private bytes(s: string, from: number, to: number): number {
    if (this.ascii) return to - from;
    const len = s.length;
    if (to - from <= len - (to - from)) return utf8Length(s, from, to);
    return this.chunkBytes - utf8Length(s, 0, from) - utf8Length(s, to, len);
  }
}
