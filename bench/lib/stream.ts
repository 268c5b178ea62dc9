/**
 * The load generator's stream reader: splits an incoming XMPP stream into the header, raw
 * top-level elements (as strings) and the end tag, with `indexOf` jumps over text. It does
 * not build trees or check well-formedness — the servers under test are trusted to send
 * XML — so that the generator spends its core on load, not on parsing. A few helpers read
 * an attribute or a child's text out of a raw element when the client needs them.
 */
import { StringDecoder } from 'node:string_decoder';

export interface StreamSink {
  /** The `<stream:stream ...>` start tag. */
  header(raw: string): void;
  /** One complete top-level element; `name` is its qualified name. */
  element(raw: string, name: string): void;
  /** `</stream:stream>`. */
  end(): void;
}

const LT = 60; // <
const GT = 62; // >
const SLASH = 47;
const QUOT = 34;
const APOS = 39;
const BANG = 33;
const QUESTION = 63;

export class StreamSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private readonly sink: StreamSink;
  private buf = '';
  /** Where scanning resumes in `buf`. */
  private pos = 0;
  /** Nesting depth: 0 before the header, 1 inside the stream, more inside a stanza. */
  private depth: number;
  /** Start of the top-level element being read, or -1. */
  private start = -1;

  /** `headerless`: the peer sends bare elements without a stream header (the relay). */
  constructor(sink: StreamSink, options: { headerless?: boolean } = {}) {
    this.sink = sink;
    this.depth = options.headerless ? 1 : 0;
  }

  write(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    this.buf = this.buf.length === 0 ? text : this.buf + text;
    this.scan();
    const cut = this.start >= 0 ? this.start : this.pos;
    if (cut > 0) {
      this.buf = this.buf.slice(cut);
      this.pos -= cut;
      if (this.start >= 0) this.start -= cut;
    }
  }

  private scan(): void {
    const buf = this.buf;
    const n = buf.length;
    let i = this.pos;
    while (i < n) {
      const lt = buf.indexOf('<', i);
      if (lt === -1) {
        i = n;
        break;
      }
      const next = buf.charCodeAt(lt + 1);
      if (Number.isNaN(next)) {
        i = lt;
        break;
      }
      if (next === QUESTION || next === BANG) {
        // XML declaration, comment or CDATA section: skip it whole.
        const terminator = next === QUESTION ? '?>' : buf.startsWith('<![CDATA[', lt) ? ']]>' : buf.startsWith('<!--', lt) ? '-->' : '>';
        const close = buf.indexOf(terminator, lt + 2);
        if (close === -1) {
          i = lt;
          break;
        }
        i = close + terminator.length;
        continue;
      }
      const gt = tagEnd(buf, lt + 1);
      if (gt === -1) {
        i = lt;
        break;
      }
      i = gt + 1;
      if (next === SLASH) {
        this.depth--;
        if (this.depth === 1) {
          const raw = buf.slice(this.start, i);
          this.start = -1;
          this.sink.element(raw, elementName(raw));
        } else if (this.depth === 0) {
          this.sink.end();
        }
        continue;
      }
      const selfClosing = buf.charCodeAt(gt - 1) === SLASH;
      if (this.depth === 0) {
        this.depth = 1;
        this.sink.header(buf.slice(lt, i));
      } else if (this.depth === 1) {
        if (selfClosing) {
          const raw = buf.slice(lt, i);
          this.sink.element(raw, elementName(raw));
        } else {
          this.start = lt;
          this.depth = 2;
        }
      } else if (!selfClosing) {
        this.depth++;
      }
    }
    this.pos = i;
  }
}

/** Index of the `>` closing the tag whose body starts at `from`, skipping quoted values; -1 when incomplete. */
function tagEnd(buf: string, from: number): number {
  const gt = buf.indexOf('>', from);
  if (gt === -1) return -1;
  // Fast path: no quote before the first '>' or an even number of them (the usual case).
  let quote = 0;
  for (let j = from; j < buf.length; j++) {
    const c = buf.charCodeAt(j);
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === QUOT || c === APOS) {
      quote = c;
    } else if (c === GT) {
      return j;
    } else if (c === LT && j > from) {
      return -1; // malformed; treat as incomplete rather than guess
    }
  }
  return -1;
}

/** The qualified name of a raw element. */
export function elementName(raw: string): string {
  let end = 1;
  while (end < raw.length) {
    const c = raw.charCodeAt(end);
    if (c === 32 || c === GT || c === SLASH || c === 9 || c === 10 || c === 13) break;
    end++;
  }
  return raw.slice(1, end);
}

/** An attribute of the root tag of a raw element (entities not decoded). */
export function rootAttr(raw: string, name: string): string | undefined {
  const end = tagEnd(raw, 1);
  const tag = end === -1 ? raw : raw.slice(0, end);
  const re = new RegExp(`\\s${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*=\\s*(?:'([^']*)'|"([^"]*)")`);
  const m = re.exec(tag);
  return m === null ? undefined : (m[1] ?? m[2]);
}

/** Text of the first `<name>` descendant (entities decoded), or undefined. */
export function childText(raw: string, name: string): string | undefined {
  const open = raw.indexOf(`<${name}`);
  if (open === -1) return undefined;
  const gt = raw.indexOf('>', open);
  if (gt === -1) return undefined;
  if (raw.charCodeAt(gt - 1) === SLASH) return '';
  const close = raw.indexOf(`</${name}>`, gt);
  if (close === -1) return undefined;
  return decodeEntities(raw.slice(gt + 1, close));
}

/** True when the raw element has a descendant start tag `<name` (any attributes). */
export function hasChild(raw: string, name: string): boolean {
  const re = new RegExp(`<${name}[\\s/>]`);
  return re.test(raw);
}

export function decodeEntities(s: string): string {
  if (s.indexOf('&') === -1) return s;
  return s.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#[0-9]+);/g, (_, e: string) => {
    switch (e) {
      case 'lt': return '<';
      case 'gt': return '>';
      case 'amp': return '&';
      case 'quot': return '"';
      case 'apos': return "'";
      default: return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === "'" ? '&apos;' : '&quot;'));
}
