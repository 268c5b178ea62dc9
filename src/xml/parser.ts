/**
 * The XML stream tokenizer: bytes in, stream header / stanzas / stream end out.
 *
 * Strict about RFC 6120 §11 restricted XML (no DTD, comments, processing instructions or
 * entities beyond the predefined five), about XML 1.0 well-formedness (UTF-8, Char and Name
 * productions, matching tags, unique attributes) and about Namespaces in XML (prefixes must
 * be declared). Bounded: a stanza (and the stream header) may not exceed maxStanzaBytes, nor
 * nest deeper than maxDepth, and nothing is buffered beyond that. See docs/xml-parser.md.
 *
 * StreamParser is one object built in three layers, each in its own file, with the hot path
 * all on `this` (one object shape, direct field access, calls the JIT can inline):
 * - here: the public API, and bytes to text per chunk (ChunkDecoder, src/xml/chunks.ts);
 * - src/xml/tokenizer.ts: the state machine, text to tags;
 * - src/xml/tree.ts: tags to the stream's events, with the namespace checks
 *   (src/xml/namespaces.ts), the size limit (src/xml/limits.ts) and error reporting.
 */
import type { XmlElement } from './element.ts';
import type { StreamErrorCondition } from './errors.ts';
import { ChunkDecoder } from './chunks.ts';
import { Tokenizer } from './tokenizer.ts';
import { Status } from './tree.ts';

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

export class StreamParser extends Tokenizer {
  private readonly chunks = new ChunkDecoder();

  constructor(handlers: ParserHandlers, options: ParserOptions) {
    super(handlers, options);
  }

  /** Forget everything: the next byte starts a new stream (optional XML declaration, then a header). */
  reset(): void {
    this.resetTokenizer();
    this.chunks.reset();
  }

  write(chunk: Buffer): void {
    if (this.status !== Status.Open || chunk.length === 0) return;
    const gen = this.gen;
    const chunks = this.chunks;
    const s = chunks.decode(chunk);
    if (s === null) {
      if (chunks.notUtf8) this.report('unsupported-encoding', 'only UTF-8 is supported');
      return;
    }
    // Copied: a handler that writes again would change them.
    const end = chunks.end;
    const invalid = chunks.invalid;
    this.limit.chunk(s, chunks.bytes);
    try {
      this.run(s, end, gen);
    } catch (err) {
      // A handler threw: the rest of the chunk is lost, so the stream cannot go on.
      if (this.gen === gen) this.status = Status.Failed;
      throw err;
    }
    if (!this.live(gen)) return;
    if (end < s.length) return this.fail('not-well-formed', 'character not allowed in XML', s, end);
    if (invalid) return this.fail('not-well-formed', 'invalid UTF-8', s, end);
    if (!this.limit.carry(s, end)) this.report('policy-violation', this.tooBig());
  }
}
