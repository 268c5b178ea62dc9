/**
 * The in-memory form of an XML element as the server handles it: a qualified name, the
 * attributes exactly as written (namespace declarations included, as `xmlns` / `xmlns:p`),
 * and children that are elements or text. Text is stored unescaped.
 */
export type XmlNode = XmlElement | string;

export class XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];

  constructor(name: string, attrs: Record<string, string> = {}, children: XmlNode[] = []) {
    this.name = name;
    this.attrs = attrs;
    this.children = children;
  }

  /** The namespace this element declares itself with, if any (a bare `xmlns` attribute). */
  get xmlns(): string | undefined {
    return this.attrs.xmlns;
  }

  attr(name: string): string | undefined {
    return this.attrs[name];
  }

  /** First child element with this local name and, when given, this declared namespace. */
  getChild(name: string, xmlns?: string): XmlElement | undefined {
    for (const child of this.children) {
      if (typeof child !== 'string' && child.name === name && (xmlns === undefined || child.attrs.xmlns === xmlns)) {
        return child;
      }
    }
    return undefined;
  }

  getChildren(name?: string, xmlns?: string): XmlElement[] {
    const found: XmlElement[] = [];
    for (const child of this.children) {
      if (typeof child === 'string') continue;
      if (name !== undefined && child.name !== name) continue;
      if (xmlns !== undefined && child.attrs.xmlns !== xmlns) continue;
      found.push(child);
    }
    return found;
  }

  /** The first child element whatever its name: the payload of an IQ. */
  firstElement(): XmlElement | undefined {
    for (const child of this.children) if (typeof child !== 'string') return child;
    return undefined;
  }

  /** Concatenated text of the direct text children. */
  text(): string {
    let out = '';
    for (const child of this.children) if (typeof child === 'string') out += child;
    return out;
  }

  getChildText(name: string, xmlns?: string): string | undefined {
    return this.getChild(name, xmlns)?.text();
  }

  append(...nodes: XmlNode[]): this {
    for (const node of nodes) this.children.push(node);
    return this;
  }

  removeChildren(predicate: (child: XmlElement) => boolean): this {
    this.children = this.children.filter((c) => typeof c === 'string' || !predicate(c));
    return this;
  }

  /** A deep copy, so a stanza can be changed for one recipient without touching the others. */
  clone(): XmlElement {
    return new XmlElement(
      this.name,
      { ...this.attrs },
      this.children.map((c) => (typeof c === 'string' ? c : c.clone())),
    );
  }

  toString(): string {
    let out = '<' + this.name;
    for (const key in this.attrs) {
      const value = this.attrs[key];
      if (value !== undefined) out += ' ' + key + "='" + escapeAttr(value) + "'";
    }
    if (this.children.length === 0) return out + '/>';
    out += '>';
    for (const child of this.children) out += typeof child === 'string' ? escapeText(child) : child.toString();
    return out + '</' + this.name + '>';
  }
}

/**
 * `s` as one contiguous string. Serialising builds a rope of many small strings, and the parsed
 * text in its leaves are slices of whole network reads: a rope kept for long (an unacknowledged
 * stanza) keeps all of those alive and gives the garbage collector thousands of objects to copy.
 * Reading a character makes V8 flatten the rope into a fresh string and drop the leaves.
 */
export function flatString(s: string): string {
  s.charCodeAt(0);
  return s;
}

/** Build an element: `el('iq', { type: 'result' }, el('query', { xmlns: NS }))`. Undefined attributes are dropped. */
export function el(name: string, attrs: Record<string, string | undefined> = {}, ...children: (XmlNode | undefined | false)[]): XmlElement {
  const clean: Record<string, string> = {};
  for (const key in attrs) {
    const value = attrs[key];
    if (value !== undefined) clean[key] = value;
  }
  const kids: XmlNode[] = [];
  for (const child of children) if (child !== undefined && child !== false) kids.push(child);
  return new XmlElement(name, clean, kids);
}

const TEXT_SPECIAL = /[&<>]/;
const ATTR_SPECIAL = /[&<>'"]/;

export function escapeText(text: string): string {
  if (!TEXT_SPECIAL.test(text)) return text;
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function escapeAttr(text: string): string {
  if (!ATTR_SPECIAL.test(text)) return text;
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');
}
