/**
 * The XML stream tokenizer: bytes in, stream header / stanzas / stream end out.
 *
 * Strict about RFC 6120 §11 restricted XML (no DTD, comments, processing instructions or
 * entities beyond the predefined five), about XML 1.0 well-formedness (UTF-8, Char and Name
 * productions, matching tags, unique attributes) and about Namespaces in XML (prefixes must
 * be declared). Bounded: a stanza (and the stream header) may not exceed maxStanzaBytes, nor
 * nest deeper than maxDepth, and nothing is buffered beyond that.
 *
 * It is a resumable state machine over the decoded text of each chunk, with indexOf fast
 * paths; every decision depends only on the characters before it, so any split of the input
 * into chunks gives the same events and the same error. See docs/xml-parser.md.
 */
import { isUtf8 } from 'node:buffer';
import { XmlElement } from './element.ts';
import type { StreamErrorCondition } from './errors.ts';
import * as chars from './chars.ts';

// Local bindings: a module namespace import may be compiled to getters (tsx), which the hot
// loops should not pay for.
const ASCII_NAME = chars.ASCII_NAME;
const firstForbidden = chars.firstForbidden;
const completeLength = chars.completeLength;
const firstInvalidUtf8 = chars.firstInvalidUtf8;
const isNameCharHigh = chars.isNameCharHigh;
const isNameStart = chars.isNameStart;
const isNameStartHigh = chars.isNameStartHigh;
const isXmlChar = chars.isXmlChar;
const utf8Length = chars.utf8Length;

export interface ParserHandlers {
  /** The root `<stream:stream ...>` open tag: qualified name and attributes as written. */
  streamStart(name: string, attrs: Record<string, string>): void;
  /** Each complete depth-1 child of the root. */
  stanza(element: XmlElement): void;
  /** `</stream:stream>`. */
  streamEnd(): void;
  /** After an error the parser ignores all input until reset(). */
  error(condition: StreamErrorCondition, text?: string): void;
}

export interface ParserOptions {
  /** Largest stanza, from its `<` to the end of its end tag, in bytes; also bounds the header. */
  maxStanzaBytes: number;
  /** Deepest nesting, the stanza counting as depth 1. */
  maxDepth: number;
}

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

const DECL =
  /^[ \t\r\n]*version[ \t\r\n]*=[ \t\r\n]*(?:'1\.[0-9]+'|"1\.[0-9]+")(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:'([A-Za-z][A-Za-z0-9._-]*)'|"([A-Za-z][A-Za-z0-9._-]*)"))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:'(?:yes|no)'|"(?:yes|no)"))?[ \t\r\n]*$/;

const CDATA_OPEN = '[CDATA[';

/** Up to this many attributes, duplicates are found by comparing names. */
const ATTR_NAMES = 8;

const enum St {
  /** Before the stream header: whitespace, the XML declaration, `<`. */
  Prolog,
  /** Just after `<`. */
  Lt,
  /** After `<?` at the very start: matching `xml` and a space. */
  PiStart,
  /** Inside the XML declaration, up to `?>`. */
  Decl,
  /** After `<!`. */
  Bang,
  /** Matching `[CDATA[`. */
  CdataOpen,
  Cdata,
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
  /** After `&`, in text or in an attribute value. */
  Entity,
  /** The root element is closed: input is ignored. */
  Done,
  Failed,
}

/** Entity reference sub-states. */
const enum Ent { First, Named, Hash, Dec, HexFirst, Hex }

interface Binding {
  uri: string;
  /** Depth of the declaring element: 1 is the stream header, 2 a stanza. */
  depth: number;
}

interface Undo {
  prefix: string;
  prev: Binding | undefined;
  depth: number;
}

export class StreamParser {
  private readonly handlers: ParserHandlers;
  private readonly maxBytes: number;
  private readonly maxDepth: number;

  /** Bumped by reset(), so that a write() interrupted by one knows to stop. */
  private gen = 0;
  private state = St.Prolog;
  /** No byte seen since reset. */
  private fresh = true;
  /** No character consumed since reset (a BOM aside): the XML declaration may come. */
  private atStart = true;
  /** The current `<` was the stream's first character. */
  private piAllowed = false;
  /** Bytes of an incomplete UTF-8 sequence at the end of the last chunk. */
  private held: Buffer | null = null;
  /** The current chunk decodes to ASCII: string offsets are byte offsets. */
  private ascii = true;
  /** Bytes the current chunk's string decodes from. */
  private chunkBytes = 0;

  // Size accounting of the region being read: the prolog and header, or one depth-1 construct.
  private limOn = true;
  /** Where the region starts in the current chunk's string (0 if it began earlier). */
  private limStart = 0;
  /** Bytes of the region in earlier chunks. */
  private limBytes = 0;

  private rootName: string | null = null;
  /** Open elements below the root; [0] is the stanza. */
  private stack: XmlElement[] = [];
  /** Text not yet attached to its element. */
  private text = '';
  /** Trailing `]` seen in text or CDATA at the end of the last chunk (0-2). */
  private brackets = 0;

  // The token under construction (kept across chunks).
  private tok = '';
  private match = 0;
  private tagName = '';
  private attrs: Record<string, string> = {};
  private attrName = '';
  /** The name being read has a colon. */
  private colon = false;
  private tagColon = false;
  private attrColon = false;
  /** Attributes in the current start tag, and the names of the first ATTR_NAMES of them. */
  private attrCount = 0;
  private readonly attrNames: string[] = new Array<string>(ATTR_NAMES).fill('');
  private quote = 0;
  private sawSpace = false;
  /** Namespace declarations in the current start tag: prefix, URI, prefix, URI... ('' = default). */
  private decls: string[] | null = null;
  /** Prefixed (non-declaration) attribute names in the current start tag. */
  private prefixed: string[] | null = null;

  private entInAttr = false;
  private entMode = Ent.First;
  private entName = '';
  private entVal = 0;

  private ns = new Map<string, Binding>();
  private undo: Undo[] = [];
  /** Prefixes the current stanza uses from the stream header's declarations. */
  private copy: string[] | null = null;

  constructor(handlers: ParserHandlers, options: ParserOptions) {
    this.handlers = handlers;
    this.maxBytes = options.maxStanzaBytes;
    this.maxDepth = options.maxDepth;
  }

  /** Forget everything: the next byte starts a new stream (optional XML declaration, then a header). */
  reset(): void {
    this.gen++;
    this.state = St.Prolog;
    this.fresh = true;
    this.atStart = true;
    this.piAllowed = false;
    this.held = null;
    this.limOn = true;
    this.limStart = 0;
    this.limBytes = 0;
    this.rootName = null;
    this.stack = [];
    this.text = '';
    this.brackets = 0;
    this.tok = '';
    this.colon = false;
    this.attrs = {};
    this.decls = null;
    this.prefixed = null;
    this.ns = new Map();
    this.undo = [];
    this.copy = null;
  }

  write(chunk: Buffer): void {
    if (this.state === St.Failed || this.state === St.Done || chunk.length === 0) return;
    const gen = this.gen;
    let buf = chunk;
    if (this.held !== null) {
      buf = Buffer.concat([this.held, chunk]);
      this.held = null;
    }
    if (this.fresh) {
      this.fresh = false;
      const b = buf[0];
      // A UTF-16 or UTF-32 byte order mark or a NUL byte: not UTF-8.
      if (b === 0x00 || b === 0xfe || b === 0xff) return this.report('unsupported-encoding', 'only UTF-8 is supported');
    }
    const n = buf.length;
    const cut = completeLength(buf, n);
    if (cut < n) this.held = Buffer.from(buf.subarray(cut));
    if (cut === 0) return;
    let valid = cut;
    if (!isUtf8(cut === n ? buf : buf.subarray(0, cut))) {
      valid = firstInvalidUtf8(buf, cut);
      this.held = null;
    }
    const s = buf.toString('utf8', 0, valid);
    this.ascii = s.length === valid;
    this.chunkBytes = valid;
    let end = s.length;
    const bad = firstForbidden(s, this.ascii);
    if (bad !== -1) end = bad;
    if (this.limOn) this.limStart = 0;
    try {
      this.run(s, end, gen);
    } catch (err) {
      // A handler threw: the rest of the chunk is lost, so the stream cannot go on.
      if (this.gen === gen) this.state = St.Failed;
      throw err;
    }
    if (!this.live(gen)) return;
    if (end < s.length) return this.fail('not-well-formed', 'character not allowed in XML', s, end);
    if (valid < cut) return this.fail('not-well-formed', 'invalid UTF-8', s, end);
    if (this.limOn) {
      this.limBytes += this.bytes(s, this.limStart, end);
      this.limStart = 0;
      if (this.limBytes > this.maxBytes) this.report('policy-violation', this.tooBig());
    }
  }

  /** Neither failed, closed nor reset since the write() of generation gen began. */
  private live(gen: number): boolean {
    return this.gen === gen && this.state !== St.Failed && this.state !== St.Done;
  }

  // --- the state machine ------------------------------------------------------------------

  private run(s: string, end: number, gen: number): void {
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
            this.limOn = true;
            this.limStart = i;
            this.limBytes = 0;
            this.piAllowed = false;
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
            this.piAllowed = false;
            this.state = St.Lt;
          } else {
            const n = predefined(s, i, end);
            if (n !== 0) {
              this.text += PREDEFINED[s.charCodeAt(i)];
              this.brackets = 0;
              i += n;
            } else {
              this.entInAttr = false;
              this.entMode = Ent.First;
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
            this.state = St.Bang;
            i++;
            break;
          }
          if (c === 63) {
            if (!this.piAllowed) return this.fail('restricted-xml', 'processing instructions are not allowed', s, i);
            this.match = 0;
            this.state = St.PiStart;
            i++;
            break;
          }
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
            this.tagName = name;
            this.tagColon = colon;
            this.attrs = {};
            this.attrCount = 0;
            this.decls = null;
            this.prefixed = null;
            if (c === 62) {
              i++;
              if (!this.openTag(s, i - 1, false, gen)) return;
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
              if (!this.closeTag(s, i - 1, gen)) return;
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
            if (!this.openTag(s, i - 1, false, gen)) return;
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
              this.entMode = Ent.First;
              this.state = St.Entity;
            }
          }
          break;
        }

        case St.Entity: {
          if (!this.entity(s, i)) return;
          i++;
          break;
        }

        case St.EmptyClose: {
          if (s.charCodeAt(i) !== 62) return this.fail('not-well-formed', "expected '>' after '/'", s, i);
          i++;
          if (!this.openTag(s, i - 1, true, gen)) return;
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
          if (!this.closeTag(s, i - 1, gen)) return;
          break;
        }

        case St.Bang: {
          c = s.charCodeAt(i);
          if (c === 91) {
            if (this.stack.length === 0) return this.fail('not-well-formed', 'CDATA section outside a stanza', s, i);
            this.match = 1;
            this.state = St.CdataOpen;
            i++;
            break;
          }
          const what = c === 45 ? 'comments are' : c === 68 ? 'DOCTYPE declarations are' : 'markup declarations are';
          return this.fail('restricted-xml', `${what} not allowed`, s, i);
        }

        case St.CdataOpen: {
          if (s.charCodeAt(i) !== CDATA_OPEN.charCodeAt(this.match)) return this.fail('restricted-xml', 'markup declarations are not allowed', s, i);
          i++;
          if (++this.match === CDATA_OPEN.length) {
            this.brackets = 0;
            this.state = St.Cdata;
          }
          break;
        }

        case St.Cdata: {
          if (this.brackets > 0) {
            c = s.charCodeAt(i);
            if (c === 62 && this.brackets === 2) {
              this.brackets = 0;
              this.state = St.Text;
              i++;
              break;
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
            i = q + 3;
            this.state = St.Text;
            break;
          }
          let e = end;
          if (e > i && s.charCodeAt(e - 1) === 93) {
            e--;
            if (e > i && s.charCodeAt(e - 1) === 93) e--;
          }
          if (e > i) this.text += s.slice(i, e);
          this.brackets = end - e;
          i = end;
          break;
        }

        case St.Prolog: {
          for (; i < end; i++) {
            c = s.charCodeAt(i);
            if (c === 60) break;
            if (c === 32 || c === 10 || c === 13 || c === 9) {
              this.atStart = false;
            } else if (c !== 0xfeff || !this.atStart) {
              return this.fail('not-well-formed', 'text before the stream header', s, i);
            }
          }
          if (i === end) break;
          this.piAllowed = this.atStart;
          this.atStart = false;
          this.state = St.Lt;
          i++;
          break;
        }

        case St.PiStart: {
          c = s.charCodeAt(i);
          if (this.match < 3) {
            if (c === 'xml'.charCodeAt(this.match)) {
              this.match++;
              i++;
              break;
            }
            if (this.match === 0 && !isNameStart(c)) return this.fail('not-well-formed', 'malformed processing instruction', s, i);
            return this.fail('restricted-xml', 'processing instructions are not allowed', s, i);
          }
          if (c === 32 || c === 10 || c === 13 || c === 9) {
            this.tok = '';
            this.state = St.Decl;
            i++;
            break;
          }
          if (c < 128 ? ASCII_NAME[c] !== 0 : isNameCharHigh(c)) return this.fail('restricted-xml', 'processing instructions are not allowed', s, i);
          return this.fail('not-well-formed', 'malformed XML declaration', s, i);
        }

        case St.Decl: {
          let content: string;
          let gt: number;
          if (this.tok.length > 0 && this.tok.charCodeAt(this.tok.length - 1) === 63 && s.charCodeAt(i) === 62) {
            content = this.tok.slice(0, -1);
            gt = i;
          } else {
            const q = s.indexOf('?>', i);
            if (q === -1 || q + 2 > end) {
              this.tok += s.slice(i, end);
              i = end;
              break;
            }
            content = this.tok + s.slice(i, q);
            gt = q + 1;
          }
          this.tok = '';
          const m = DECL.exec(content);
          if (m === null) return this.fail('not-well-formed', 'malformed XML declaration', s, gt);
          const encoding = m[1] ?? m[2];
          if (encoding !== undefined && encoding.toLowerCase() !== 'utf-8') {
            return this.fail('unsupported-encoding', `encoding '${encoding}' is not supported; use UTF-8`, s, gt);
          }
          this.state = St.Prolog;
          i = gt + 1;
          break;
        }

        default:
          // Done or Failed (write() does not call run() then; a handler may have closed).
          return;
      }
    }
  }

  /** One character of an entity or character reference; false if it failed. */
  private entity(s: string, i: number): boolean {
    const c = s.charCodeAt(i);
    switch (this.entMode) {
      case Ent.First:
        if (c === 35) {
          this.entMode = Ent.Hash;
          return true;
        }
        if (!isNameStart(c)) break;
        this.entName = s[i];
        this.entMode = Ent.Named;
        return true;
      case Ent.Named:
        if (c === 59) {
          const name = this.entName;
          const ch = name === 'lt' ? '<' : name === 'gt' ? '>' : name === 'amp' ? '&' : name === 'quot' ? '"' : name === 'apos' ? "'" : '';
          if (ch === '') {
            this.fail('restricted-xml', `entity '&${name.length > 16 ? name.slice(0, 16) + '...' : name};' is not allowed`, s, i);
            return false;
          }
          this.entityDone(ch);
          return true;
        }
        if (c < 128 ? ASCII_NAME[c] === 0 : !isNameCharHigh(c)) break;
        // Only short names can be predefined ones; keep a little for the error text.
        if (this.entName.length < 24) this.entName += s[i];
        return true;
      case Ent.Hash:
        if (c === 120) {
          this.entMode = Ent.HexFirst;
          return true;
        }
        if (c < 48 || c > 57) break;
        this.entVal = c - 48;
        this.entMode = Ent.Dec;
        return true;
      case Ent.Dec:
        if (c >= 48 && c <= 57) {
          this.entVal = Math.min(this.entVal * 10 + (c - 48), 0x110000);
          return true;
        }
        if (c === 59) return this.charRef(s, i);
        break;
      case Ent.HexFirst:
      case Ent.Hex: {
        const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
        if (d >= 0) {
          this.entVal = this.entMode === Ent.HexFirst ? d : Math.min(this.entVal * 16 + d, 0x110000);
          this.entMode = Ent.Hex;
          return true;
        }
        if (c === 59 && this.entMode === Ent.Hex) return this.charRef(s, i);
        break;
      }
    }
    this.fail('not-well-formed', 'malformed entity reference', s, i);
    return false;
  }

  private charRef(s: string, i: number): boolean {
    if (!isXmlChar(this.entVal)) {
      this.fail('not-well-formed', 'character reference to a character not allowed in XML', s, i);
      return false;
    }
    this.entityDone(String.fromCodePoint(this.entVal));
    return true;
  }

  private entityDone(ch: string): void {
    if (this.entInAttr) {
      this.tok += ch;
      this.state = St.AttrValue;
    } else {
      this.text += ch;
      this.brackets = 0;
      this.state = St.Text;
    }
  }

  /** Whether the current start tag already has this attribute. */
  private isDuplicate(name: string): boolean {
    const n = this.attrCount;
    if (n > ATTR_NAMES) return Object.hasOwn(this.attrs, name);
    // Comparing a few short strings is cheaper than a keyed lookup of a fresh string.
    const names = this.attrNames;
    for (let k = 0; k < n; k++) if (names[k] === name) return true;
    return false;
  }

  private setAttr(name: string, value: string, colon: boolean): void {
    const n = this.attrCount++;
    if (n < ATTR_NAMES) this.attrNames[n] = name;
    else if (n === ATTR_NAMES) this.attrNames.fill('');
    if (name === 'xmlns') {
      // A default namespace needs no tracking (absence means the stream's); only misuse is noted.
      if (value === XML_NS || value === XMLNS_NS) (this.decls ??= []).push('', value);
    } else if (colon && name !== 'xml:lang') {
      // (xml: is always bound, and to a namespace no other prefix may have: xml:lang cannot clash.)
      if (name.length > 6 && name.charCodeAt(5) === 58 && name.startsWith('xmlns')) (this.decls ??= []).push(name.slice(6), value);
      else (this.prefixed ??= []).push(name);
    }
    if (name === '__proto__') {
      Object.defineProperty(this.attrs, name, { value, enumerable: true, writable: true, configurable: true });
    } else {
      this.attrs[name] = value;
    }
  }

  /** A start tag ended at s[gt]. False if parsing must stop (error, reset, stream end). */
  private openTag(s: string, gt: number, selfClosing: boolean, gen: number): boolean {
    const name = this.tagName;
    const attrs = this.attrs;
    const depth = this.rootName === null ? 1 : this.stack.length + 2;
    if (this.decls !== null || this.prefixed !== null || this.tagColon) {
      const problem = this.namespaces(name, depth);
      if (problem !== undefined) {
        this.fail('not-well-formed', problem, s, gt);
        return false;
      }
    }
    this.state = St.Text;
    if (this.rootName === null) {
      if (!this.endRegion(s, gt + 1)) return false;
      this.rootName = name;
      if (selfClosing) {
        this.state = St.Done;
        this.handlers.streamStart(name, attrs);
        if (this.gen === gen && this.state === St.Done) this.handlers.streamEnd();
        return false;
      }
      this.handlers.streamStart(name, attrs);
      return this.gen === gen && this.state === St.Text;
    }
    const element = new XmlElement(name, attrs, []);
    const stack = this.stack;
    if (stack.length > 0) {
      const parent = stack[stack.length - 1];
      if (this.text !== '') {
        parent.children.push(this.text);
        this.text = '';
      }
      parent.children.push(element);
    }
    if (!selfClosing) {
      stack.push(element);
      return true;
    }
    this.popNamespaces(depth);
    return stack.length > 0 || this.emit(element, s, gt, gen);
  }

  /** An end tag ended at s[gt]. */
  private closeTag(s: string, gt: number, gen: number): boolean {
    const stack = this.stack;
    if (stack.length === 0) {
      if (!this.endRegion(s, gt + 1)) return false;
      this.state = St.Done;
      this.handlers.streamEnd();
      return false;
    }
    const depth = stack.length + 1;
    const element = stack.pop()!;
    if (this.text !== '') {
      element.children.push(this.text);
      this.text = '';
    }
    this.popNamespaces(depth);
    this.state = St.Text;
    return stack.length > 0 || this.emit(element, s, gt, gen);
  }

  private emit(element: XmlElement, s: string, gt: number, gen: number): boolean {
    if (!this.endRegion(s, gt + 1)) return false;
    this.brackets = 0;
    const copy = this.copy;
    if (copy !== null) {
      this.copy = null;
      for (const prefix of copy) {
        const key = 'xmlns:' + prefix;
        const binding = this.ns.get(prefix);
        if (binding !== undefined && !Object.hasOwn(element.attrs, key)) element.attrs[key] = binding.uri;
      }
    }
    this.handlers.stanza(element);
    return this.gen === gen && this.state === St.Text;
  }

  /**
   * Namespaces in XML for a start tag: bind its declarations, check that every prefix it uses
   * is declared. Returns what is wrong, if anything.
   */
  private namespaces(name: string, depth: number): string | undefined {
    const decls = this.decls;
    if (decls !== null) {
      for (let j = 0; j < decls.length; j += 2) {
        const prefix = decls[j];
        const uri = decls[j + 1];
        if (prefix === '') {
          if (uri === XML_NS || uri === XMLNS_NS) return `the default namespace cannot be ${uri}`;
          continue;
        }
        if (prefix === 'xmlns') return "the prefix 'xmlns' cannot be declared";
        if (prefix === 'xml') {
          if (uri !== XML_NS) return `the prefix 'xml' cannot be bound to ${uri}`;
          continue;
        }
        if (uri === XML_NS || uri === XMLNS_NS) return `the prefix '${prefix}' cannot be bound to ${uri}`;
        if (uri === '') return `the prefix '${prefix}' cannot be undeclared`;
        this.undo.push({ prefix, prev: this.ns.get(prefix), depth });
        this.ns.set(prefix, { uri, depth });
      }
    }
    const colon = name.indexOf(':');
    if (colon !== -1) {
      const prefix = name.slice(0, colon);
      if (prefix === 'xmlns') return "elements cannot have the prefix 'xmlns'";
      if (prefix !== 'xml' && this.resolve(prefix, depth) === undefined) return `undeclared namespace prefix '${prefix}'`;
    }
    const prefixed = this.prefixed;
    if (prefixed !== null) {
      const expanded = prefixed.length > 1 ? new Set<string>() : undefined;
      for (const attr of prefixed) {
        const at = attr.indexOf(':');
        const prefix = attr.slice(0, at);
        let uri: string | undefined;
        if (prefix === 'xml') uri = XML_NS;
        else uri = this.resolve(prefix, depth);
        if (uri === undefined) return `undeclared namespace prefix '${prefix}'`;
        if (expanded !== undefined) {
          const key = uri + ' ' + attr.slice(at + 1);
          if (expanded.has(key)) return `attribute '${attr}' duplicates another in the same namespace`;
          expanded.add(key);
        }
      }
    }
    return undefined;
  }

  private resolve(prefix: string, depth: number): string | undefined {
    const binding = this.ns.get(prefix);
    if (binding === undefined) return undefined;
    if (binding.depth === 1 && depth >= 2) {
      const copy = (this.copy ??= []);
      if (!copy.includes(prefix)) copy.push(prefix);
    }
    return binding.uri;
  }

  private popNamespaces(depth: number): void {
    const undo = this.undo;
    while (undo.length > 0 && undo[undo.length - 1].depth === depth) {
      const { prefix, prev } = undo.pop()!;
      if (prev === undefined) this.ns.delete(prefix);
      else this.ns.set(prefix, prev);
    }
  }

  // --- limits and errors --------------------------------------------------------------------

  /** UTF-8 length of s[from, to): counted on whichever side of the chunk is shorter. */
  private bytes(s: string, from: number, to: number): number {
    if (this.ascii) return to - from;
    const len = s.length;
    if (to - from <= len - (to - from)) return utf8Length(s, from, to);
    return this.chunkBytes - utf8Length(s, 0, from) - utf8Length(s, to, len);
  }

  /** The counted region ends before s[end]: within the limit? */
  private endRegion(s: string, end: number): boolean {
    this.limOn = false;
    // A UTF-16 code unit is at most 3 bytes: most stanzas need no counting.
    if (this.limBytes + 3 * (end - this.limStart) <= this.maxBytes) return true;
    if (this.limBytes + this.bytes(s, this.limStart, end) > this.maxBytes) {
      this.report('policy-violation', this.tooBig());
      return false;
    }
    return true;
  }

  private tooBig(): string {
    return `${this.rootName === null ? 'stream header' : 'stanza'} larger than ${this.maxBytes} bytes`;
  }

  /** An error at s[pos]; past the size limit, the size is what gets reported. */
  private fail(condition: StreamErrorCondition, text: string, s: string, pos: number): void {
    if (this.limOn && this.limBytes + this.bytes(s, this.limStart, pos) > this.maxBytes) {
      this.report('policy-violation', this.tooBig());
    } else {
      this.report(condition, text);
    }
  }

  private report(condition: StreamErrorCondition, text: string): void {
    this.state = St.Failed;
    this.stack = [];
    this.text = '';
    this.tok = '';
    this.held = null;
    this.handlers.error(condition, text);
  }
}

/**
 * Names that stanzas use all the time, by length. Returning the literal instead of a slice of
 * the input saves an allocation and makes the attribute store use an internalised key.
 */
const KNOWN: string[][] = [];
const KNOWN_MAX = 16;
for (const name of [
  'to', 'from', 'id', 'type', 'xmlns', 'xml:lang', 'name', 'jid', 'node', 'ver', 'hash', 'var', 'by', 'stamp',
  'subscription', 'ask', 'category', 'version', 'message', 'presence', 'iq', 'body', 'query', 'item', 'show',
  'status', 'priority', 'thread', 'subject', 'error', 'text', 'x', 'c', 'r', 'a', 'enable', 'resume',
  'stanza-id', 'origin-id', 'active', 'composing', 'paused', 'request', 'received', 'displayed', 'markable',
  'delay', 'forwarded', 'result', 'set', 'max', 'before', 'after', 'group', 'identity', 'feature', 'field',
  'value', 'photo', 'nick', 'h', 'auth', 'response', 'mechanism', 'bind', 'resource', 'starttls', 'session',
  'stream:error', 'xmlns:stream', 'queryid', 'role', 'affiliation', 'reason', 'code', 'scope', 'mode', 'push',
  'publish', 'items', 'event', 'retract', 'pubsub', 'approved', 'stream:features',
]) {
  // Keyed by length and first character.
  const key = name.length * 128 + name.charCodeAt(0);
  const list = (KNOWN[key] ??= []);
  if (!list.includes(name)) list.push(name);
}
for (let k = 0; k < KNOWN_MAX * 128; k++) KNOWN[k] ??= [];

function known(s: string, from: number, to: number): string | undefined {
  const first = s.charCodeAt(from);
  if (first >= 128) return undefined;
  const names = KNOWN[(to - from) * 128 + first];
  next: for (let k = 0; k < names.length; k++) {
    const name = names[k];
    for (let j = 1; j < name.length; j++) if (name.charCodeAt(j) !== s.charCodeAt(from + j)) continue next;
    return name;
  }
  return undefined;
}

/** The character a predefined entity stands for, by the entity name's first letter. */
const PREDEFINED: Record<number, string> = { 97: '&', 108: '<', 103: '>', 113: '"' };

/**
 * Fast path for the common references: the length of `amp;`, `lt;`, `gt;` or `quot;` if one
 * starts at s[i] and ends before `end`, else 0 (the entity state machine takes over).
 * `&apos;` also starts with 'a', so it is left to the state machine.
 */
function predefined(s: string, i: number, end: number): number {
  switch (s.charCodeAt(i)) {
    case 97: // amp;
      return i + 4 <= end && s.charCodeAt(i + 1) === 109 && s.charCodeAt(i + 2) === 112 && s.charCodeAt(i + 3) === 59 ? 4 : 0;
    case 108: // lt;
    case 103: // gt;
      return i + 3 <= end && s.charCodeAt(i + 1) === 116 && s.charCodeAt(i + 2) === 59 ? 3 : 0;
    case 113: // quot;
      return i + 5 <= end && s.charCodeAt(i + 1) === 117 && s.charCodeAt(i + 2) === 111 && s.charCodeAt(i + 3) === 116 && s.charCodeAt(i + 4) === 59 ? 5 : 0;
    default:
      return 0;
  }
}

/** Namespaces in XML QName: at most one colon, with a non-empty NCName either side. */
function isQName(name: string): boolean {
  const colon = name.indexOf(':');
  if (colon === -1) return true;
  return colon > 0 && colon < name.length - 1 && name.indexOf(':', colon + 1) === -1 && isNameStart(name.charCodeAt(colon + 1));
}
