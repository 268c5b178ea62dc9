/**
 * What may come before the stream header, for the stream tokenizer (src/xml/parser.ts): a
 * byte order mark, whitespace, and the XML declaration — only as the very first thing, with
 * UTF-8 as its only encoding. Any other processing instruction is restricted XML. Runs once
 * per stream, so it is kept out of the tokenizer's hot state machine: that takes over at the
 * first `<` that does not open the declaration.
 */
import type { StreamErrorCondition } from './errors.ts';
import { ASCII_NAME, isNameCharHigh, isNameStart } from './chars.ts';

const DECL =
  /^[ \t\r\n]*version[ \t\r\n]*=[ \t\r\n]*(?:'1\.[0-9]+'|"1\.[0-9]+")(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:'([A-Za-z][A-Za-z0-9._-]*)'|"([A-Za-z][A-Za-z0-9._-]*)"))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:'(?:yes|no)'|"(?:yes|no)"))?[ \t\r\n]*$/;

const enum Ph {
  /** Whitespace, up to `<`. */
  Space,
  /** After the stream's very first character, `<`: the declaration may follow. */
  Lt,
  /** After `<?` at the very start: matching `xml` and a space. */
  Pi,
  /** Inside the XML declaration, up to `?>`. */
  Decl,
}

export class PrologReader {
  private phase = Ph.Space;
  /** No character read since reset (a BOM aside): the XML declaration may come. */
  private atStart = true;
  /** Characters of `xml` matched after `<?`. */
  private match = 0;
  /** The declaration's content so far. */
  private decl = '';
  /** The prolog is over: the tokenizer reads on from the index read() returned. */
  done = false;
  /** What went wrong at the index read() returned, if `problem` is set. */
  condition: StreamErrorCondition = 'not-well-formed';
  problem = '';

  reset(): void {
    this.phase = Ph.Space;
    this.atStart = true;
    this.decl = '';
    this.done = false;
    this.problem = '';
  }

  /** Lets go of a partly read declaration (the stream failed). */
  clear(): void {
    this.decl = '';
  }

  /**
   * Reads s[i, end). Returns end if all of it belongs to the prolog; with `done`, the index
   * just after the `<` of the first markup other than the declaration; with `problem`, the
   * index of the character that is wrong.
   */
  read(s: string, i: number, end: number): number {
    let c = 0;
    while (i < end) {
      switch (this.phase) {
        case Ph.Space: {
          for (; i < end; i++) {
            c = s.charCodeAt(i);
            if (c === 60) break;
            if (c === 32 || c === 10 || c === 13 || c === 9) {
              this.atStart = false;
            } else if (c !== 0xfeff || !this.atStart) {
              return this.error('not-well-formed', 'text before the stream header', i);
            }
          }
          if (i === end) break;
          i++;
          if (!this.atStart) {
            this.done = true;
            return i;
          }
          this.atStart = false;
          this.phase = Ph.Lt;
          break;
        }

        case Ph.Lt: {
          if (s.charCodeAt(i) !== 63) {
            this.done = true;
            return i;
          }
          this.match = 0;
          this.phase = Ph.Pi;
          i++;
          break;
        }

        case Ph.Pi: {
          c = s.charCodeAt(i);
          if (this.match < 3) {
            if (c === 'xml'.charCodeAt(this.match)) {
              this.match++;
              i++;
              break;
            }
            if (this.match === 0 && !isNameStart(c)) return this.error('not-well-formed', 'malformed processing instruction', i);
            return this.error('restricted-xml', 'processing instructions are not allowed', i);
          }
          if (c === 32 || c === 10 || c === 13 || c === 9) {
            this.decl = '';
            this.phase = Ph.Decl;
            i++;
            break;
          }
          if (c < 128 ? ASCII_NAME[c] !== 0 : isNameCharHigh(c)) return this.error('restricted-xml', 'processing instructions are not allowed', i);
          return this.error('not-well-formed', 'malformed XML declaration', i);
        }

        case Ph.Decl: {
          let content: string;
          let gt: number;
          if (this.decl.length > 0 && this.decl.charCodeAt(this.decl.length - 1) === 63 && s.charCodeAt(i) === 62) {
            content = this.decl.slice(0, -1);
            gt = i;
          } else {
            const q = s.indexOf('?>', i);
            if (q === -1 || q + 2 > end) {
              this.decl += s.slice(i, end);
              i = end;
              break;
            }
            content = this.decl + s.slice(i, q);
            gt = q + 1;
          }
          this.decl = '';
          const m = DECL.exec(content);
          if (m === null) return this.error('not-well-formed', 'malformed XML declaration', gt);
          const encoding = m[1] ?? m[2];
          if (encoding !== undefined && encoding.toLowerCase() !== 'utf-8') {
            return this.error('unsupported-encoding', `encoding '${encoding}' is not supported; use UTF-8`, gt);
          }
          this.phase = Ph.Space;
          i = gt + 1;
          break;
        }
      }
    }
    return i;
  }

  private error(condition: StreamErrorCondition, problem: string, at: number): number {
    this.condition = condition;
    this.problem = problem;
    return at;
  }
}
