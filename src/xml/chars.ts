/**
 * Character classes and UTF-8 helpers for the stream tokenizer (src/xml/parser.ts): the XML
 * 1.0 (fifth edition) Name and Char productions, and byte-level UTF-8 checks.
 */

/** ASCII lookup, bits: NAME_CHAR, NAME_START, COLON. */
export const NAME_CHAR = 1;
export const NAME_START = 2;
export const COLON = 4;
export const ASCII_NAME = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const start = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 /* _ */ || c === 58; /* : */
  const name = start || (c >= 48 && c <= 57) || c === 45 /* - */ || c === 46; /* . */
  ASCII_NAME[c] = (name ? NAME_CHAR : 0) | (start ? NAME_START : 0) | (c === 58 ? COLON : 0);
}

/** NameStartChar for a UTF-16 code unit >= 0x80 (a high surrogate stands for planes 1-14). */
export function isNameStartHigh(c: number): boolean {
  return (
    (c >= 0xc0 && c <= 0xd6) || (c >= 0xd8 && c <= 0xf6) || (c >= 0xf8 && c <= 0x2ff) ||
    (c >= 0x370 && c <= 0x37d) || (c >= 0x37f && c <= 0x1fff) || c === 0x200c || c === 0x200d ||
    (c >= 0x2070 && c <= 0x218f) || (c >= 0x2c00 && c <= 0x2fef) || (c >= 0x3001 && c <= 0xd7ff) ||
    // #x10000-#xEFFFF: high surrogates D800-DB7F; the low half is accepted as a NameChar.
    (c >= 0xd800 && c <= 0xdb7f) ||
    (c >= 0xf900 && c <= 0xfdcf) || (c >= 0xfdf0 && c <= 0xfffd)
  );
}

/** NameChar for a UTF-16 code unit >= 0x80. */
export function isNameCharHigh(c: number): boolean {
  return (
    isNameStartHigh(c) || c === 0xb7 || (c >= 0x300 && c <= 0x36f) || c === 0x203f || c === 0x2040 ||
    // Low surrogates only ever follow a high one in validated input.
    (c >= 0xdc00 && c <= 0xdfff)
  );
}

export function isNameStart(c: number): boolean {
  return c < 128 ? (ASCII_NAME[c] & NAME_START) !== 0 : isNameStartHigh(c);
}

export function isNameChar(c: number): boolean {
  return c < 128 ? ASCII_NAME[c] !== 0 : isNameCharHigh(c);
}

/** XML whitespace (S production). */
export function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13;
}

/**
 * C0 controls other than tab, LF, CR: never allowed in XML 1.0. The other code units outside
 * the Char production are U+FFFE and U+FFFF (lone surrogates cannot come out of validated
 * UTF-8); see firstForbidden().
 */
export const FORBIDDEN_CONTROL = /[\x00-\x08\x0B\x0C\x0E-\x1F]/;

/**
 * Index of the first code unit of s that cannot appear in an XML document, or -1. A class of
 * only the controls runs twice as fast as one that includes U+FFFE/U+FFFF, which indexOf
 * finds at memchr speed (and only non-ASCII text can contain).
 */
export function firstForbidden(s: string, ascii: boolean): number {
  let bad = s.search(FORBIDDEN_CONTROL);
  if (!ascii) {
    const fffe = s.indexOf('\ufffe');
    if (fffe !== -1 && (bad === -1 || fffe < bad)) bad = fffe;
    const ffff = s.indexOf('\uffff');
    if (ffff !== -1 && (bad === -1 || ffff < bad)) bad = ffff;
  }
  return bad;
}

/** Whether a code point is an XML 1.0 Char (for character references). */
export function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** Number of UTF-8 bytes that encode s[from, to) (a string decoded from valid UTF-8). */
export function utf8Length(s: string, from: number, to: number): number {
  let n = to - from;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) n += c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 1 : 2; // surrogate pair: 2 + 2
  }
  return n;
}

/**
 * Length of the prefix of buf[0, n) that does not end inside a multi-byte sequence: the bytes
 * after it are the start of a character whose remaining bytes are still to come. Invalid
 * bytes are not held back (the validator reports them).
 */
export function completeLength(buf: Uint8Array, n: number): number {
  for (let k = 1; k <= 3 && k <= n; k++) {
    const b = buf[n - k];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = b >= 0xf5 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 1;
    return need > k ? n - k : n;
  }
  return n;
}

/**
 * Offset of the first byte of buf[0, n) that does not start a well-formed UTF-8 sequence
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), or n if all is valid.
 */
export function firstInvalidUtf8(buf: Uint8Array, n: number): number {
  let i = 0;
  while (i < n) {
    const b = buf[i];
    if (b < 0x80) { i++; continue; }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // overlong
      else if (b === 0xed) hi = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90; // overlong
      else if (b === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return i;
    if (i + need >= n) return i; // truncated sequence
    const b1 = buf[i + 1];
    if (b1 < lo || b1 > hi) return i;
    for (let k = 2; k <= need; k++) if ((buf[i + k] & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return n;
}
