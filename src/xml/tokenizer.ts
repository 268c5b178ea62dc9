/**
 * The stream tokenizer's state machine: the decoded text of each chunk in, tags and text out
 * to the tree (src/xml/tree.ts), which turns them into the stream's events.
 *
 * A resumable state machine with indexOf fast paths: within a state it consumes as much as
 * it can at once, and a token cut by a chunk boundary is carried over in `tok` without being
 * read again. Every decision depends only on the characters before it, and every error is
 * tied to the position of the character that causes it, so any split of the input into
 * chunks gives the same events and the same error. See docs/xml-parser.md.
 *
 * The hot states all live in one function, run(), and compare constants of an enum local to
 * this file, so that the JIT compiles them as one loop. What happens once per stream or
 * seldom is read by helpers: PrologReader (before the header), CdataReader (`<!`) and
 * ReferenceDecoder (`&...;` beyond the common four).
 */
import * as chars from './chars.ts';
import * as names from './names.ts';
import * as namespaces from './namespaces.ts';
import * as references from './references.ts';
import { CdataReader } from './cdata.ts';
import { PrologReader } from './prolog.ts';
import { Status, TreeBuilder } from './tree.ts';

// Local bindings: a module namespace import may be compiled to getters (tsx), which the hot
// loops should not pay for.
const ASCII_NAME = chars.ASCII_NAME;
const isNameCharHigh = chars.isNameCharHigh;
const isNameStartHigh = chars.isNameStartHigh;
const KNOWN_MAX = names.KNOWN_MAX;
const known = names.known;
const isQName = namespaces.isQName;
const PREDEFINED = references.PREDEFINED;
const predefined = references.predefined;

const enum St {
  /** Before the stream header (PrologReader). */
  Prolog,
  /** Just after `<`. */
  Lt,
  /** After `<!` (CdataReader). */
  Bang,
  StartName,
  /** In a start tag, between attributes. */
  Tag,
  AttrName,
  /** After an attribute name, before `=`. */
  AttrEq,
  /** After `=`, before the quote. */
  AttrQuote,
  AttrValue,
  /** After `/` in a start tag. */
  EmptyClose,
  /** After `</`. */
  EndStart,
  EndName,
  /** After an end tag's name, before `>`. */
  EndTag,
  Text,
  /** After `&`, in text or in an attribute value (ReferenceDecoder). */
  Entity,
}

/**
 * The middle layer of StreamParser (src/xml/parser.ts), which adds the bytes and the public
 * API on top. A layer of one object rather than an object of its own, so that run() reaches
 * the tree's fields and methods directly.
 */
export abstract class Tokenizer extends TreeBuilder {
  private state = St.Prolog;
  private readonly prolog = new PrologReader();
  private readonly cdata = new CdataReader();
  private readonly ref = new references.ReferenceDecoder();
  /** Trailing `]` seen in text at the end of the last chunk (0-2): maybe the start of `]]>`. */
  private brackets = 0;

  // The token under construction (kept across chunks).
  private tok = '';
  private attrName = '';
  /** The name being read has a colon. */
  private colon = false;
  private attrColon = false;
  private quote = 0;
  private sawSpace = false;
  /** The reference being read is in an attribute value, not in text. */
  private entInAttr = false;

  /** A new stream: an optional XML declaration, then a header. */
  protected resetTokenizer(): void {
    this.resetTree();
    this.state = St.Prolog;
    this.prolog.reset();
    this.brackets = 0;
    this.tok = '';
    this.colon = false;
  }

  /** The stream is open and between stanzas, with nothing half read. */
  get betweenStanzas(): boolean {
    return this.status === Status.Open && this.rootName !== null && this.stack.length === 0 && this.state === St.Text;
  }

  protected discard(): void {
    this.tok = '';
    this.prolog.clear();
  }

  /** Reads s[0, end), the decoded text of one chunk, in write() of generation gen. */
  protected run(s: string, end: number, gen: number): void {
    const len = s.length;
    let i = 0;
    let c = 0;
    // Next '<', '&' and ']]>' at or after i (len if none): each searched once per chunk.
    let lt = -1;
    let amp = -1;
    let rb = -1;
    while (i < end) {
      switch (this.state) {
        case St.Text: {
          if (this.stack.length === 0) {
            // Between stanzas: whitespace keepalives only, not kept.
            for (; i < end; i++) {
              c = s.charCodeAt(i);
              if (c === 60) break;
              if (!(c === 32 || c === 10 || c === 13 || c === 9)) return this.fail('not-well-formed', 'text outside a stanza', s, i);
            }
            if (i === end) break;
            this.limit.begin(i);
            this.state = St.Lt;
            i++;
            break;
          }
          if (this.brackets > 0) {
            // ']' or ']]' ended the last chunk: is this ']]>'?
            while (i < end) {
              c = s.charCodeAt(i);
              if (c === 93) {
                this.brackets = 2;
                this.text += ']';
                i++;
              } else {
                if (c === 62 && this.brackets === 2) return this.fail('not-well-formed', "']]>' in text", s, i);
                this.brackets = 0;
                break;
              }
            }
            if (i === end) break;
          }
          if (lt < i) { lt = s.indexOf('<', i); if (lt === -1) lt = len; }
          if (amp < i) { amp = s.indexOf('&', i); if (amp === -1) amp = len; }
          let stop = lt < amp ? lt : amp;
          if (stop > end) stop = end;
          if (rb < i) { rb = s.indexOf(']]>', i); if (rb === -1) rb = len; }
          if (rb < stop) return this.fail('not-well-formed', "']]>' in text", s, rb + 2);
          if (stop > i) this.text += s.slice(i, stop);
          if (stop === end) {
            let b = 0;
            if (end > i && s.charCodeAt(end - 1) === 93) b = end - 1 > i && s.charCodeAt(end - 2) === 93 ? 2 : 1;
            this.brackets = b;
            i = end;
            break;
          }
          i = stop + 1;
          if (s.charCodeAt(stop) === 60) {
            this.state = St.Lt;
          } else {
            const n = predefined(s, i, end);
            if (n !== 0) {
              this.text += PREDEFINED[s.charCodeAt(i)];
              i += n;
            } else {
              this.entInAttr = false;
              this.ref.begin();
              this.state = St.Entity;
            }
          }
          break;
        }

        case St.Lt: {
          c = s.charCodeAt(i);
          if (c < 128 ? (ASCII_NAME[c] & 2) !== 0 : isNameStartHigh(c)) {
            if (this.rootName !== null && this.stack.length >= this.maxDepth) {
              return this.fail('policy-violation', `elements nested deeper than ${this.maxDepth}`, s, i);
            }
            this.tok = '';
            this.state = St.StartName;
            break;
          }
          if (c === 47) {
            if (this.rootName === null) return this.fail('not-well-formed', 'end tag before the stream header', s, i);
            this.state = St.EndStart;
            i++;
            break;
          }
          if (c === 33) {
            this.cdata.begin();
            this.state = St.Bang;
            i++;
            break;
          }
          if (c === 63) return this.fail('restricted-xml', 'processing instructions are not allowed', s, i);
          return this.fail('not-well-formed', "invalid character after '<'", s, i);
        }

        case St.StartName:
        case St.AttrName:
        case St.EndName: {
          const start = i;
          let colon = false;
          for (; i < end; i++) {
            c = s.charCodeAt(i);
            if (c < 128) {
              const t = ASCII_NAME[c];
              if (t === 0) break;
              if (t > 3) colon = true;
            } else if (!isNameCharHigh(c)) {
              break;
            }
          }
          if (colon) this.colon = true;
          if (i === end) {
            this.tok += s.slice(start, end);
            break;
          }
          const state = this.state;
          let name: string;
          if (this.tok === '') {
            if (state === St.EndName) {
              // The usual case: compare in place with the open element's name.
              const open = this.stack.length > 0 ? this.stack[this.stack.length - 1].name : this.rootName!;
              name = i - start === open.length && s.startsWith(open, start) ? open : s.slice(start, i);
            } else {
              name = (i - start < KNOWN_MAX && known(s, start, i)) || s.slice(start, i);
            }
          } else {
            name = this.tok + s.slice(start, i);
            this.tok = '';
          }
          colon = this.colon;
          this.colon = false;
          if (colon && !isQName(name)) return this.fail('not-well-formed', `invalid qualified name '${name}'`, s, i);
          if (state === St.StartName) {
            this.startTag(name, colon);
            if (c === 62) {
              i++;
              this.state = St.Text;
              if (!this.openTag(s, i - 1, false, gen) || this.state !== St.Text) return;
            } else if (c === 47) {
              this.state = St.EmptyClose;
              i++;
            } else if (c === 32 || c === 10 || c === 13 || c === 9) {
              this.sawSpace = true;
              this.state = St.Tag;
              i++;
            } else {
              return this.fail('not-well-formed', 'invalid character in element name', s, i);
            }
          } else if (state === St.AttrName) {
            if (this.isDuplicate(name)) return this.fail('not-well-formed', `duplicate attribute '${name}'`, s, i);
            this.attrName = name;
            this.attrColon = colon;
            if (c === 61) {
              this.state = St.AttrQuote;
              i++;
            } else if (c === 32 || c === 10 || c === 13 || c === 9) {
              this.state = St.AttrEq;
              i++;
            } else {
              return this.fail('not-well-formed', 'invalid character in attribute name', s, i);
            }
          } else {
            const open = this.stack.length > 0 ? this.stack[this.stack.length - 1].name : this.rootName;
            if (name !== open) return this.fail('not-well-formed', `end tag '${name}' does not match '${open}'`, s, i);
            if (c === 62) {
              i++;
              this.state = St.Text;
              if (!this.closeTag(s, i - 1, gen) || this.state !== St.Text) return;
            } else if (c === 32 || c === 10 || c === 13 || c === 9) {
              this.state = St.EndTag;
              i++;
            } else {
              return this.fail('not-well-formed', 'invalid character in end tag', s, i);
            }
          }
          break;
        }

        case St.Tag: {
          c = s.charCodeAt(i);
          while (c === 32 || c === 10 || c === 13 || c === 9) {
            this.sawSpace = true;
            if (++i === end) break;
            c = s.charCodeAt(i);
          }
          if (i === end) break;
          if (c === 62) {
            i++;
            this.state = St.Text;
            if (!this.openTag(s, i - 1, false, gen) || this.state !== St.Text) return;
          } else if (c === 47) {
            this.state = St.EmptyClose;
            i++;
          } else if (c < 128 ? (ASCII_NAME[c] & 2) !== 0 : isNameStartHigh(c)) {
            if (!this.sawSpace) return this.fail('not-well-formed', 'attributes must be separated by whitespace', s, i);
            this.tok = '';
            this.state = St.AttrName;
          } else {
            return this.fail('not-well-formed', 'invalid character in start tag', s, i);
          }
          break;
        }

        case St.AttrEq:
        case St.AttrQuote: {
          c = s.charCodeAt(i);
          while (c === 32 || c === 10 || c === 13 || c === 9) {
            if (++i === end) break;
            c = s.charCodeAt(i);
          }
          if (i === end) break;
          if (this.state === St.AttrEq) {
            if (c !== 61) return this.fail('not-well-formed', "expected '=' after attribute name", s, i);
            this.state = St.AttrQuote;
          } else {
            if (c !== 34 && c !== 39) return this.fail('not-well-formed', 'attribute values must be quoted', s, i);
            this.quote = c;
            this.tok = '';
            this.state = St.AttrValue;
          }
          i++;
          break;
        }

        case St.AttrValue: {
          let stop = s.indexOf(this.quote === 39 ? "'" : '"', i);
          if (stop === -1 || stop > end) stop = end;
          if (lt < i) { lt = s.indexOf('<', i); if (lt === -1) lt = len; }
          if (amp < i) { amp = s.indexOf('&', i); if (amp === -1) amp = len; }
          if (lt < stop) stop = lt;
          if (amp < stop) stop = amp;
          if (stop > i) this.tok += s.slice(i, stop);
          i = stop;
          if (i === end) break;
          c = s.charCodeAt(i);
          i++;
          if (c === this.quote) {
            this.setAttr(this.attrName, this.tok, this.attrColon);
            this.tok = '';
            this.sawSpace = false;
            this.state = St.Tag;
          } else if (c === 60) {
            return this.fail('not-well-formed', "'<' in attribute value", s, i - 1);
          } else {
            const n = predefined(s, i, end);
            if (n !== 0) {
              this.tok += PREDEFINED[s.charCodeAt(i)];
              i += n;
            } else {
              this.entInAttr = true;
              this.ref.begin();
              this.state = St.Entity;
            }
          }
          break;
        }

        case St.Entity: {
          const ch = this.ref.step(s, i);
          if (ch === null) return this.fail(this.ref.condition, this.ref.problem, s, i);
          i++;
          if (ch === '') break;
          if (this.entInAttr) {
            this.tok += ch;
            this.state = St.AttrValue;
          } else {
            this.text += ch;
            this.state = St.Text;
          }
          break;
        }

        case St.EmptyClose: {
          if (s.charCodeAt(i) !== 62) return this.fail('not-well-formed', "expected '>' after '/'", s, i);
          i++;
          this.state = St.Text;
          if (!this.openTag(s, i - 1, true, gen) || this.state !== St.Text) return;
          break;
        }

        case St.EndStart: {
          c = s.charCodeAt(i);
          if (!(c < 128 ? (ASCII_NAME[c] & 2) !== 0 : isNameStartHigh(c))) return this.fail('not-well-formed', 'invalid end tag', s, i);
          this.tok = '';
          this.state = St.EndName;
          break;
        }

        case St.EndTag: {
          c = s.charCodeAt(i);
          while (c === 32 || c === 10 || c === 13 || c === 9) {
            if (++i === end) break;
            c = s.charCodeAt(i);
          }
          if (i === end) break;
          if (c !== 62) return this.fail('not-well-formed', "expected '>' in end tag", s, i);
          i++;
          this.state = St.Text;
          if (!this.closeTag(s, i - 1, gen) || this.state !== St.Text) return;
          break;
        }

        case St.Bang: {
          const cdata = this.cdata;
          i = cdata.read(s, i, end, this.stack.length > 0);
          if (cdata.problem !== '') return this.fail(cdata.condition, cdata.problem, s, i);
          if (cdata.text !== '') {
            this.text += cdata.text;
            cdata.text = '';
          }
          if (cdata.done) this.state = St.Text;
          break;
        }

        case St.Prolog: {
          const prolog = this.prolog;
          i = prolog.read(s, i, end);
          if (prolog.problem !== '') return this.fail(prolog.condition, prolog.problem, s, i);
          if (prolog.done) this.state = St.Lt;
          break;
        }
      }
    }
  }
}
