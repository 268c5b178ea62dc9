/**
 * Markup that starts with `<!`, for the stream tokenizer (src/xml/tokenizer.ts). RFC 6120 §11
 * leaves only CDATA sections, and only inside a stanza: comments, DOCTYPE (refused at its `D`,
 * so no DTD is ever read) and other declarations are restricted XML. A section's content
 * becomes text, merged with the text around it. Rare in XMPP, so it is kept out of the hot
 * state machine.
 */
import type { StreamErrorCondition } from './errors.ts';

const CDATA_OPEN = '[CDATA[';

const enum Ph {
  /** Just after `<!`. */
  Bang,
  /** Matching `[CDATA[`. */
  Open,
  Content,
}

export class CdataReader {
  private phase = Ph.Bang;
  /** Characters of `[CDATA[` matched. */
  private match = 0;
  /** Trailing `]` of the content at the end of the last chunk (0-2): maybe the start of `]]>`. */
  private brackets = 0;
  /** Content read by the last read(), for the caller to append to its text and clear. */
  text = '';
  /** The section is over: the tokenizer reads text on from the index read() returned. */
  done = false;
  /** What went wrong at the index read() returned, if `problem` is set. */
  condition: StreamErrorCondition = 'not-well-formed';
  problem = '';

  /** `<!` was read. */
  begin(): void {
    this.phase = Ph.Bang;
    this.done = false;
    this.problem = '';
  }

  /**
   * Reads s[i, end), inside a stanza or not. Returns end if all of it belongs to the section;
   * with `done`, the index after its `]]>`; with `problem`, the index of the character that is
   * wrong.
   */
  read(s: string, i: number, end: number, inStanza: boolean): number {
    let c = 0;
    while (i < end) {
      switch (this.phase) {
        case Ph.Bang: {
          c = s.charCodeAt(i);
          if (c === 91) {
            if (!inStanza) return this.error('not-well-formed', 'CDATA section outside a stanza', i);
            this.match = 1;
            this.phase = Ph.Open;
            i++;
            break;
          }
          const what = c === 45 ? 'comments are' : c === 68 ? 'DOCTYPE declarations are' : 'markup declarations are';
          return this.error('restricted-xml', `${what} not allowed`, i);
        }

        case Ph.Open: {
          if (s.charCodeAt(i) !== CDATA_OPEN.charCodeAt(this.match)) return this.error('restricted-xml', 'markup declarations are not allowed', i);
          i++;
          if (++this.match === CDATA_OPEN.length) {
            this.brackets = 0;
            this.phase = Ph.Content;
          }
          break;
        }

        case Ph.Content: {
          if (this.brackets > 0) {
            c = s.charCodeAt(i);
            if (c === 62 && this.brackets === 2) {
              this.brackets = 0;
              this.done = true;
              return i + 1;
            }
            if (c === 93) {
              if (this.brackets === 2) this.text += ']';
              else this.brackets = 2;
              i++;
              break;
            }
            this.text += this.brackets === 2 ? ']]' : ']';
            this.brackets = 0;
          }
          const q = s.indexOf(']]>', i);
          if (q !== -1 && q + 3 <= end) {
            if (q > i) this.text += s.slice(i, q);
            this.done = true;
            return q + 3;
          }
          let e = end;
          if (e > i && s.charCodeAt(e - 1) === 93) {
            e--;
            if (e > i && s.charCodeAt(e - 1) === 93) e--;
          }
          if (e > i) this.text += s.slice(i, e);
          this.brackets = end - e;
          return end;
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
