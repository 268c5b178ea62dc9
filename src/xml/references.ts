/**
 * Character and entity references (`&...;`) for the stream tokenizer (src/xml/parser.ts), in
 * text and attribute values. RFC 6120 §11 allows only the five predefined entities and
 * character references to XML Chars. The common ones (`&amp; &lt; &gt; &quot;`) are decoded in
 * place when they lie whole in the chunk; anything else, or a reference cut by a chunk
 * boundary, goes through ReferenceDecoder one character at a time.
 */
import type { StreamErrorCondition } from './errors.ts';
import { isNameCharHigh, isNameStart, isXmlChar, ASCII_NAME } from './chars.ts';

/** The character a predefined entity stands for, by the entity name's first letter. */
export const PREDEFINED: Record<number, string> = { 97: '&', 108: '<', 103: '>', 113: '"' };

/**
 * Fast path for the common references: the length of `amp;`, `lt;`, `gt;` or `quot;` if one
 * starts at s[i] and ends before `end`, else 0 (ReferenceDecoder takes over).
 * `&apos;` also starts with 'a', so it is left to ReferenceDecoder.
 */
export function predefined(s: string, i: number, end: number): number {
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

const enum Ent { First, Named, Hash, Dec, HexFirst, Hex }

/** One reference, fed the characters after its `&`. */
export class ReferenceDecoder {
  private mode = Ent.First;
  /** The entity name so far (at most 24 characters: only short names can be predefined). */
  private name = '';
  /** The character reference's code point so far, capped at 0x110000. */
  private value = 0;
  /** Why the last step() returned null. */
  condition: StreamErrorCondition = 'not-well-formed';
  problem = '';

  /** A reference starts: the next step() gets the character after `&`. */
  begin(): void {
    this.mode = Ent.First;
  }

  /**
   * Reads s[i]. Returns the character the reference stands for when s[i] is its `;`, '' when
   * more is to come, or null when s[i] makes it an error (see `condition` and `problem`).
   */
  step(s: string, i: number): string | null {
    const c = s.charCodeAt(i);
    switch (this.mode) {
      case Ent.First:
        if (c === 35) {
          this.mode = Ent.Hash;
          return '';
        }
        if (!isNameStart(c)) break;
        this.name = s[i];
        this.mode = Ent.Named;
        return '';
      case Ent.Named:
        if (c === 59) {
          const name = this.name;
          const ch = name === 'lt' ? '<' : name === 'gt' ? '>' : name === 'amp' ? '&' : name === 'quot' ? '"' : name === 'apos' ? "'" : '';
          if (ch === '') return this.error('restricted-xml', `entity '&${name.length > 16 ? name.slice(0, 16) + '...' : name};' is not allowed`);
          return ch;
        }
        if (c < 128 ? ASCII_NAME[c] === 0 : !isNameCharHigh(c)) break;
        // Only short names can be predefined ones; keep a little for the error text.
        if (this.name.length < 24) this.name += s[i];
        return '';
      case Ent.Hash:
        if (c === 120) {
          this.mode = Ent.HexFirst;
          return '';
        }
        if (c < 48 || c > 57) break;
        this.value = c - 48;
        this.mode = Ent.Dec;
        return '';
      case Ent.Dec:
        if (c >= 48 && c <= 57) {
          this.value = Math.min(this.value * 10 + (c - 48), 0x110000);
          return '';
        }
        if (c === 59) return this.charRef();
        break;
      case Ent.HexFirst:
      case Ent.Hex: {
        const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
        if (d >= 0) {
          this.value = this.mode === Ent.HexFirst ? d : Math.min(this.value * 16 + d, 0x110000);
          this.mode = Ent.Hex;
          return '';
        }
        if (c === 59 && this.mode === Ent.Hex) return this.charRef();
        break;
      }
    }
    return this.error('not-well-formed', 'malformed entity reference');
  }

  private charRef(): string | null {
    if (!isXmlChar(this.value)) return this.error('not-well-formed', 'character reference to a character not allowed in XML');
    return String.fromCodePoint(this.value);
  }

  private error(condition: StreamErrorCondition, problem: string): null {
    this.condition = condition;
    this.problem = problem;
    return null;
  }
}
