/**
 * Namespaces in XML for the stream tokenizer (src/xml/parser.ts): the prefixes in scope,
 * with their declaring depth so that they go out of scope with their element; the checks on a
 * start tag (every prefix declared, no misuse of `xml`/`xmlns`, no duplicate expanded
 * attribute names); and the stream header's declarations that a stanza uses, which the
 * parser copies onto it so that it is self-contained. Names and attributes themselves are
 * reported as written; only prefixes are tracked (the default namespace needs no tracking:
 * its absence means the stream's).
 */
import { isNameStart } from './chars.ts';

export const XML_NS = 'http://www.w3.org/XML/1998/namespace';
export const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

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

/** Namespaces in XML QName: at most one colon, with a non-empty NCName either side. */
export function isQName(name: string): boolean {
  const colon = name.indexOf(':');
  if (colon === -1) return true;
  return colon > 0 && colon < name.length - 1 && name.indexOf(':', colon + 1) === -1 && isNameStart(name.charCodeAt(colon + 1));
}

export class NamespaceScope {
  private ns = new Map<string, Binding>();
  private undo: Undo[] = [];
  /** Prefixes the current stanza uses from the stream header's declarations. */
  private copy: string[] | null = null;

  reset(): void {
    this.ns = new Map();
    this.undo = [];
    this.copy = null;
  }

  /**
   * A start tag at this depth: binds its declarations (decls: prefix, URI, prefix, URI...;
   * '' is the default namespace) and checks that every prefix its name and its prefixed
   * attributes use is declared. Returns what is wrong, if anything.
   */
  enter(name: string, decls: string[] | null, prefixed: string[] | null, depth: number): string | undefined {
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

  /** The element at this depth closed: its declarations go out of scope. */
  leave(depth: number): void {
    const undo = this.undo;
    while (undo.length > 0 && undo[undo.length - 1].depth === depth) {
      const { prefix, prev } = undo.pop()!;
      if (prev === undefined) this.ns.delete(prefix);
      else this.ns.set(prefix, prev);
    }
  }

  /** A stanza is complete: adds the header's declarations of the prefixes it uses to its attributes. */
  copyInto(attrs: Record<string, string>): void {
    const copy = this.copy;
    if (copy === null) return;
    this.copy = null;
    for (const prefix of copy) {
      const key = 'xmlns:' + prefix;
      const binding = this.ns.get(prefix);
      if (binding !== undefined && !Object.hasOwn(attrs, key)) attrs[key] = binding.uri;
    }
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
}
