/**
 * What the stream tokenizer's tags become: the stream header, each stanza as an element tree,
 * the stream end — or one error. Holds the open elements, the text not yet attached, the
 * attributes of the start tag being read, and the stream's status and size limit, and calls
 * the handlers.
 *
 * StreamParser (src/xml/parser.ts) extends this class rather than holding one: its state
 * machine reaches these fields and methods on `this` exactly as when they were one class (one
 * object shape, monomorphic calls the JIT inlines, no extra indirection per token). The
 * tokenizer's own state stays there, so that its hot switch compares inlined constants.
 */
import { XmlElement } from './element.ts';
import type { StreamErrorCondition } from './errors.ts';
import { SizeLimit } from './limits.ts';
import { NamespaceScope, XML_NS, XMLNS_NS } from './namespaces.ts';
import type { ParserHandlers, ParserOptions } from './parser.ts';

export const enum Status {
  Open,
  /** The root element is closed: input is ignored. */
  Done,
  /** An error was reported: input is ignored until reset(). */
  Failed,
}

/** Up to this many attributes, duplicates are found by comparing names. */
const ATTR_NAMES = 8;

export abstract class TreeBuilder {
  private readonly handlers: ParserHandlers;
  protected readonly maxDepth: number;
  protected readonly limit: SizeLimit;

  /** Bumped by reset, so that a write() interrupted by one knows to stop. */
  protected gen = 0;
  protected status = Status.Open;

  protected rootName: string | null = null;
  /** Open elements below the root; [0] is the stanza. */
  protected stack: XmlElement[] = [];
  /** Text not yet attached to its element. */
  protected text = '';

  // The start tag being read.
  private tagName = '';
  /** Its name has a colon. */
  private tagColon = false;
  private attrs: Record<string, string> = {};
  /** Attributes so far, and the names of the first ATTR_NAMES of them. */
  private attrCount = 0;
  private readonly attrNames: string[] = new Array<string>(ATTR_NAMES).fill('');
  /** Namespace declarations: prefix, URI, prefix, URI... ('' = default). */
  private decls: string[] | null = null;
  /** Prefixed (non-declaration) attribute names. */
  private prefixed: string[] | null = null;

  private readonly scope = new NamespaceScope();

  constructor(handlers: ParserHandlers, options: ParserOptions) {
    this.handlers = handlers;
    this.maxDepth = options.maxDepth;
    this.limit = new SizeLimit(options.maxStanzaBytes);
  }

  /** A new stream. */
  protected resetTree(): void {
    this.gen++;
    this.status = Status.Open;
    this.limit.reset();
    this.rootName = null;
    this.stack = [];
    this.text = '';
    this.attrs = {};
    this.decls = null;
    this.prefixed = null;
    this.scope.reset();
  }

  /** Neither failed, closed nor reset since the write() of generation gen began. */
  protected live(gen: number): boolean {
    return this.gen === gen && this.status === Status.Open;
  }

  /** A start tag begins with this name. */
  protected startTag(name: string, colon: boolean): void {
    this.tagName = name;
    this.tagColon = colon;
    this.attrs = {};
    this.attrCount = 0;
    this.decls = null;
    this.prefixed = null;
  }

  /** Whether the start tag already has this attribute. */
  protected isDuplicate(name: string): boolean {
    const n = this.attrCount;
    if (n > ATTR_NAMES) return Object.hasOwn(this.attrs, name);
    // Comparing a few short strings is cheaper than a keyed lookup of a fresh string.
    const names = this.attrNames;
    for (let k = 0; k < n; k++) if (names[k] === name) return true;
    return false;
  }

  protected setAttr(name: string, value: string, colon: boolean): void {
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

  /**
   * The start tag ended at s[gt]. False if parsing must stop (error, reset, stream end); if
   * it goes on, the caller checks that a handler did not move its state.
   */
  protected openTag(s: string, gt: number, selfClosing: boolean, gen: number): boolean {
    const name = this.tagName;
    const attrs = this.attrs;
    const depth = this.rootName === null ? 1 : this.stack.length + 2;
    if (this.decls !== null || this.prefixed !== null || this.tagColon) {
      const problem = this.scope.enter(name, this.decls, this.prefixed, depth);
      if (problem !== undefined) {
        this.fail('not-well-formed', problem, s, gt);
        return false;
      }
    }
    if (this.rootName === null) {
      if (!this.endRegion(s, gt + 1)) return false;
      this.rootName = name;
      if (selfClosing) {
        this.status = Status.Done;
        this.handlers.streamStart(name, attrs);
        if (this.gen === gen && this.status === Status.Done) this.handlers.streamEnd();
        return false;
      }
      this.handlers.streamStart(name, attrs);
      return this.live(gen);
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
    this.scope.leave(depth);
    return stack.length > 0 || this.emit(element, s, gt, gen);
  }

  /** The end tag of the innermost open element (or of the root) ended at s[gt]. */
  protected closeTag(s: string, gt: number, gen: number): boolean {
    const stack = this.stack;
    if (stack.length === 0) {
      if (!this.endRegion(s, gt + 1)) return false;
      this.status = Status.Done;
      this.handlers.streamEnd();
      return false;
    }
    const depth = stack.length + 1;
    const element = stack.pop()!;
    if (this.text !== '') {
      element.children.push(this.text);
      this.text = '';
    }
    this.scope.leave(depth);
    return stack.length > 0 || this.emit(element, s, gt, gen);
  }

  private emit(element: XmlElement, s: string, gt: number, gen: number): boolean {
    if (!this.endRegion(s, gt + 1)) return false;
    this.scope.copyInto(element.attrs);
    this.handlers.stanza(element);
    return this.live(gen);
  }

  /** The counted region ends before s[end]: within the limit? */
  private endRegion(s: string, end: number): boolean {
    if (this.limit.end(s, end)) return true;
    this.report('policy-violation', this.tooBig());
    return false;
  }

  protected tooBig(): string {
    return `${this.rootName === null ? 'stream header' : 'stanza'} larger than ${this.limit.max} bytes`;
  }

  /** An error at s[pos]; past the size limit, the size is what gets reported. */
  protected fail(condition: StreamErrorCondition, text: string, s: string, pos: number): void {
    if (this.limit.passed(s, pos)) this.report('policy-violation', this.tooBig());
    else this.report(condition, text);
  }

  protected report(condition: StreamErrorCondition, text: string): void {
    this.status = Status.Failed;
    this.stack = [];
    this.text = '';
    this.discard();
    this.handlers.error(condition, text);
  }

  /** Drops the tokenizer's partial token (the stream failed: it will not be completed). */
  protected abstract discard(): void;
}
