/**
 * Bytes in, text out, for the stream tokenizer (src/xml/parser.ts): each chunk becomes the
 * string the state machine reads, cut where it stops being XML. A UTF-8 sequence cut by the
 * chunk boundary is held for the next chunk; simdutf (`buffer.isUtf8`) validates the rest and
 * a JS scan finds the first bad byte only if that fails; one search finds the first character
 * XML does not allow. Kept apart from the tokenizer because it runs once per chunk, not per
 * token, and has nothing to do with markup.
 */
import { isUtf8 } from 'node:buffer';
import { completeLength, firstForbidden, firstInvalidUtf8 } from './chars.ts';

export class ChunkDecoder {
  /** No byte seen since reset. */
  private fresh = true;
  /** Bytes of an incomplete UTF-8 sequence at the end of the last chunk. */
  private held: Buffer | null = null;

  /** The stream's first byte is a UTF-16/32 byte order mark or a NUL: not UTF-8. */
  notUtf8 = false;
  /** Bytes the last decoded text came from. */
  bytes = 0;
  /** Where the last decoded text stops being XML: its first character not allowed, or its length. */
  end = 0;
  /** The bytes after the last decoded text are not UTF-8 (rather than incomplete). */
  invalid = false;

  reset(): void {
    this.fresh = true;
    this.held = null;
    this.notUtf8 = false;
  }

  /**
   * The text of this chunk (after the bytes held from the last one), valid UTF-8 only; `end`
   * and `invalid` say where and why parsing must stop. Null if there is nothing to parse yet,
   * or if the stream is not UTF-8 (`notUtf8`).
   */
  decode(chunk: Buffer): string | null {
    let buf = chunk;
    if (this.held !== null) {
      buf = Buffer.concat([this.held, chunk]);
      this.held = null;
    }
    if (this.fresh) {
      this.fresh = false;
      const b = buf[0];
      if (b === 0x00 || b === 0xfe || b === 0xff) {
        this.notUtf8 = true;
        return null;
      }
    }
    const n = buf.length;
    const cut = completeLength(buf, n);
    if (cut < n) this.held = Buffer.from(buf.subarray(cut));
    if (cut === 0) return null;
    let valid = cut;
    if (!isUtf8(cut === n ? buf : buf.subarray(0, cut))) {
      valid = firstInvalidUtf8(buf, cut);
      this.held = null;
    }
    const s = buf.toString('utf8', 0, valid);
    this.bytes = valid;
    this.invalid = valid < cut;
    const bad = firstForbidden(s, s.length === valid);
    this.end = bad === -1 ? s.length : bad;
    return s;
  }
}
