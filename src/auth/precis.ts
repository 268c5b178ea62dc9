/**
 * PRECIS (RFC 8264) string classes and the profiles XMPP needs (RFC 8265, RFC 7622):
 *
 * - UsernameCaseMapped (RFC 8265 §3.3): width mapping, lower-casing, NFC, the Bidi Rule,
 *   IdentifierClass. Used for SASL usernames and, with extra forbidden characters, for JID
 *   localparts (RFC 7622 §3.3).
 * - OpaqueString (RFC 8265 §4.2): non-ASCII spaces to U+0020, NFC, FreeformClass. Used for
 *   passwords and for JID resourceparts (RFC 7622 §3.4).
 *
 * The derived property of each code point (RFC 8264 §8) is computed at run time from the
 * JavaScript engine's Unicode data (regex property escapes and String#normalize), so the
 * tables follow the Unicode version Node ships rather than a frozen copy.
 *
 * Approximations, where JavaScript exposes no Unicode property:
 * - Virama (Canonical_Combining_Class = 9, used by the ZWNJ/ZWJ context rules) is detected
 *   through canonical reordering against marks of class 8 and 10; exact.
 * - Joining_Type (ZWNJ rule, RFC 5892 A.1) is not available: a ZWNJ that does not follow a
 *   virama is accepted when it sits between letters of a joining script (Arabic, Syriac,
 *   N'Ko, Mongolian, ...), skipping marks and format characters as transparent. This is
 *   more permissive than the exact L/D ... R/D pattern.
 * - Bidi_Class (Bidi Rule, RFC 5893) is not available: code points in the blocks whose
 *   default class is R or AL count as right-to-left (except marks, which count as NSM, and
 *   the Arabic-Indic digits and number signs, which count as AN/EN); other letters, spacing
 *   marks and digits count as L. The rule is applied only to strings that contain a
 *   right-to-left code point (a string without one is a valid LTR label).
 * - Hangul_Syllable_Type L/V/T (OldHangulJamo) uses the fixed code point ranges of the
 *   conjoining jamo blocks, which have been stable since Unicode 5.2.
 * - Width mapping applies NFKC to U+3000 and U+FF01..U+FFEE one code point at a time: these
 *   are exactly the code points with a <wide> or <narrow> decomposition.
 * - Case mapping is Unicode toLowerCase applied per code point, i.e. without the
 *   context-dependent Final_Sigma rule (so "ΣΑΣ" becomes "σασ" and idempotence holds).
 * - BackwardCompatible is empty, as RFC 8264 defines it today.
 */

export class PrecisError extends Error {
  override name = 'PrecisError';
}

/**
 * RFC 8264 §8 derived property values. 'FREE_PVAL' stands for the categories the RFC
 * writes as "ID_DIS or FREE_PVAL": allowed in FreeformClass, disallowed in IdentifierClass.
 */
export type DerivedProperty = 'PVALID' | 'FREE_PVAL' | 'CONTEXTJ' | 'CONTEXTO' | 'DISALLOWED' | 'UNASSIGNED';

/** RFC 7622: each JID part is at most 1023 octets of UTF-8. */
export const MAX_PART_BYTES = 1023;

// RFC 5892 §2.6 Exceptions.
const EXCEPTIONS = new Map<number, DerivedProperty>([
  [0x00df, 'PVALID'], [0x03c2, 'PVALID'], [0x06fd, 'PVALID'], [0x06fe, 'PVALID'],
  [0x0f0b, 'PVALID'], [0x3007, 'PVALID'],
  [0x00b7, 'CONTEXTO'], [0x0375, 'CONTEXTO'], [0x05f3, 'CONTEXTO'], [0x05f4, 'CONTEXTO'],
  [0x30fb, 'CONTEXTO'],
  [0x0640, 'DISALLOWED'], [0x07fa, 'DISALLOWED'], [0x302e, 'DISALLOWED'], [0x302f, 'DISALLOWED'],
  [0x3031, 'DISALLOWED'], [0x3032, 'DISALLOWED'], [0x3033, 'DISALLOWED'], [0x3034, 'DISALLOWED'],
  [0x3035, 'DISALLOWED'], [0x303b, 'DISALLOWED'],
]);
for (let cp = 0x0660; cp <= 0x0669; cp++) EXCEPTIONS.set(cp, 'CONTEXTO');
for (let cp = 0x06f0; cp <= 0x06f9; cp++) EXCEPTIONS.set(cp, 'CONTEXTO');

const RE_UNASSIGNED = /\p{Cn}/u;
const RE_NONCHARACTER = /\p{Noncharacter_Code_Point}/u;
const RE_IGNORABLE = /[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/u;
const RE_CONTROL = /\p{Cc}/u;
const RE_LETTER_DIGITS = /[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]/u;
const RE_OTHER_LETTER_DIGITS = /[\p{Lt}\p{Nl}\p{No}\p{Me}]/u;
const RE_SPACES = /\p{Zs}/u;
const RE_SYMBOLS = /[\p{Sm}\p{Sc}\p{Sk}\p{So}]/u;
const RE_PUNCTUATION = /\p{P}/u;

function isOldHangulJamo(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97c) || (cp >= 0xd7b0 && cp <= 0xd7c6) ||
    (cp >= 0xd7cb && cp <= 0xd7fb);
}

/** The RFC 8264 §8 derived property of one code point. */
export function derivedProperty(cp: number): DerivedProperty {
  const exception = EXCEPTIONS.get(cp);
  if (exception !== undefined) return exception;
  // BackwardCompatible (RFC 8264 §9.7) is empty.
  if (cp >= 0xd800 && cp <= 0xdfff) return 'DISALLOWED'; // lone surrogate halves
  const ch = String.fromCodePoint(cp);
  if (RE_UNASSIGNED.test(ch) && !RE_NONCHARACTER.test(ch)) return 'UNASSIGNED';
  if (cp >= 0x21 && cp <= 0x7e) return 'PVALID'; // ASCII7
  if (cp === 0x200c || cp === 0x200d) return 'CONTEXTJ'; // JoinControl
  if (isOldHangulJamo(cp)) return 'DISALLOWED';
  if (RE_IGNORABLE.test(ch)) return 'DISALLOWED'; // PrecisIgnorableProperties
  if (RE_CONTROL.test(ch)) return 'DISALLOWED';
  if (ch.normalize('NFKC') !== ch) return 'FREE_PVAL'; // HasCompat
  if (RE_LETTER_DIGITS.test(ch)) return 'PVALID';
  if (RE_OTHER_LETTER_DIGITS.test(ch)) return 'FREE_PVAL';
  if (RE_SPACES.test(ch)) return 'FREE_PVAL';
  if (RE_SYMBOLS.test(ch)) return 'FREE_PVAL';
  if (RE_PUNCTUATION.test(ch)) return 'FREE_PVAL';
  return 'DISALLOWED';
}

// ---- contextual rules (RFC 5892 Appendix A) ----

const RE_MARK = /\p{M}/u;

/** Canonical_Combining_Class = 9, found through canonical reordering (see the file comment). */
function isVirama(cp: number): boolean {
  if (cp === 0x05b0 || cp === 0x3099) return false; // the reference marks (classes 10 and 8)
  const m = String.fromCodePoint(cp);
  if (!RE_MARK.test(m)) return false;
  // Reordering swaps adjacent marks when the first has the higher non-zero class.
  const above8 = ('a' + m + '\u3099').normalize('NFD') === 'a\u3099' + m;
  const below10 = ('a\u05b0' + m).normalize('NFD') === 'a' + m + '\u05b0';
  return above8 && below10;
}

const RE_JOINING_SCRIPT =
  /[\p{Script=Arabic}\p{Script=Syriac}\p{Script=Nko}\p{Script=Mongolian}\p{Script=Phags_Pa}\p{Script=Mandaic}\p{Script=Manichaean}\p{Script=Psalter_Pahlavi}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Sogdian}\p{Script=Chorasmian}\p{Script=Old_Uyghur}]/u;
const RE_LETTER = /\p{L}/u;
const RE_TRANSPARENT = /[\p{Mn}\p{Me}\p{Cf}]/u;
const RE_GREEK = /\p{Script=Greek}/u;
const RE_HEBREW = /\p{Script=Hebrew}/u;
const RE_KANA_HAN = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

function joiningLetterAt(cps: number[], start: number, step: 1 | -1): boolean {
  for (let i = start; i >= 0 && i < cps.length; i += step) {
    const ch = String.fromCodePoint(cps[i]);
    if (cps[i] !== 0x200c && RE_TRANSPARENT.test(ch)) continue;
    return RE_LETTER.test(ch) && RE_JOINING_SCRIPT.test(ch);
  }
  return false;
}

function contextAllows(cps: number[], i: number): boolean {
  const cp = cps[i];
  const before = i > 0 ? cps[i - 1] : -1;
  const after = i + 1 < cps.length ? cps[i + 1] : -1;
  switch (cp) {
    case 0x200c: // ZERO WIDTH NON-JOINER
      if (before >= 0 && isVirama(before)) return true;
      return joiningLetterAt(cps, i - 1, -1) && joiningLetterAt(cps, i + 1, 1);
    case 0x200d: // ZERO WIDTH JOINER
      return before >= 0 && isVirama(before);
    case 0x00b7: // MIDDLE DOT, only in Catalan l·l
      return before === 0x6c && after === 0x6c;
    case 0x0375: // GREEK LOWER NUMERAL SIGN (KERAIA)
      return after >= 0 && RE_GREEK.test(String.fromCodePoint(after));
    case 0x05f3: // HEBREW PUNCTUATION GERESH
    case 0x05f4: // HEBREW PUNCTUATION GERSHAYIM
      return before >= 0 && RE_HEBREW.test(String.fromCodePoint(before));
    case 0x30fb: // KATAKANA MIDDLE DOT
      return cps.some((c) => c !== 0x30fb && RE_KANA_HAN.test(String.fromCodePoint(c)));
    default:
      if (cp >= 0x0660 && cp <= 0x0669) return !cps.some((c) => c >= 0x06f0 && c <= 0x06f9);
      if (cp >= 0x06f0 && cp <= 0x06f9) return !cps.some((c) => c >= 0x0660 && c <= 0x0669);
      return false;
  }
}

function describe(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

function enforceClass(cps: number[], freeform: boolean, what: string): void {
  for (let i = 0; i < cps.length; i++) {
    const prop = derivedProperty(cps[i]);
    if (prop === 'PVALID') continue;
    if (prop === 'FREE_PVAL' && freeform) continue;
    if ((prop === 'CONTEXTJ' || prop === 'CONTEXTO') && contextAllows(cps, i)) continue;
    throw new PrecisError(`${what}: ${describe(cps[i])} is not allowed`);
  }
}

// ---- Bidi Rule (RFC 5893 §2), approximated: see the file comment ----

type Bidi = 'L' | 'R' | 'AN' | 'EN' | 'NSM' | 'WS' | 'BN' | 'ON' | 'X';

const RE_BIDI_L = /[\p{L}\p{Mc}\p{Nd}\p{Nl}]/u;
const RE_NSM = /[\p{Mn}\p{Me}]/u;

function isRtlBlock(cp: number): boolean {
  return (cp >= 0x0590 && cp <= 0x08ff) || (cp >= 0xfb1d && cp <= 0xfdcf) || (cp >= 0xfdf0 && cp <= 0xfdff) ||
    (cp >= 0xfe70 && cp <= 0xfeff) || (cp >= 0x10800 && cp <= 0x10fff) || (cp >= 0x1e800 && cp <= 0x1efff);
}

function isArabicNumber(cp: number): boolean {
  return (cp >= 0x0600 && cp <= 0x0605) || (cp >= 0x0660 && cp <= 0x0669) || cp === 0x066b || cp === 0x066c ||
    cp === 0x06dd || cp === 0x0890 || cp === 0x0891 || cp === 0x08e2 || (cp >= 0x10d30 && cp <= 0x10d39) ||
    (cp >= 0x10e60 && cp <= 0x10e7e);
}

function isEuropeanNumber(cp: number): boolean {
  return (cp >= 0x30 && cp <= 0x39) || cp === 0xb2 || cp === 0xb3 || cp === 0xb9 || (cp >= 0x06f0 && cp <= 0x06f9) ||
    cp === 0x2070 || (cp >= 0x2074 && cp <= 0x2079) || (cp >= 0x2080 && cp <= 0x2089) ||
    (cp >= 0x2488 && cp <= 0x249b) || (cp >= 0xff10 && cp <= 0xff19) || (cp >= 0x1d7ce && cp <= 0x1d7ff) ||
    (cp >= 0x1f100 && cp <= 0x1f10a) || (cp >= 0x1fbf0 && cp <= 0x1fbf9);
}

function bidiClass(cp: number): Bidi {
  if (isArabicNumber(cp)) return 'AN';
  if (isEuropeanNumber(cp)) return 'EN';
  if (cp === 0x200e) return 'L';
  if (cp === 0x200f) return 'R';
  if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) return 'X'; // embeddings, isolates
  const ch = String.fromCodePoint(cp);
  if (RE_NSM.test(ch)) return 'NSM';
  if (isRtlBlock(cp)) return RE_SPACES.test(ch) ? 'WS' : 'R';
  if (RE_BIDI_L.test(ch)) return 'L';
  if (RE_SPACES.test(ch)) return 'WS';
  if (/[\p{Cc}\p{Cf}]/u.test(ch)) return 'BN';
  return 'ON';
}

/** Throws unless the string satisfies the Bidi Rule as an RTL label, when it is one. */
function enforceBidi(cps: number[], what: string): void {
  const classes = cps.map(bidiClass);
  if (!classes.some((c) => c === 'R' || c === 'AN')) return; // no right-to-left content
  const fail = (why: string): never => {
    throw new PrecisError(`${what}: violates the Bidi Rule (${why})`);
  };
  if (classes[0] !== 'R') fail('a right-to-left string must start with a right-to-left letter');
  for (const c of classes) {
    if (c === 'L' || c === 'WS' || c === 'X') fail('left-to-right or directional content in a right-to-left string');
  }
  let last = classes.length - 1;
  while (last > 0 && classes[last] === 'NSM') last--;
  const end = classes[last];
  if (end !== 'R' && end !== 'EN' && end !== 'AN') fail('a right-to-left string must end with a letter or digit');
  if (classes.includes('EN') && classes.includes('AN')) fail('mixes European and Arabic-Indic digits');
}

// ---- helpers ----

function codePoints(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0)!);
  return out;
}

/** Width mapping: code points with a <wide> or <narrow> decomposition map to it. */
function isWidthMapped(cp: number): boolean {
  return cp === 0x3000 || (cp >= 0xff01 && cp <= 0xffee);
}

const RE_ASCII_IDENTIFIER = /^[\x21-\x7e]+$/;
const RE_ASCII_FREEFORM = /^[\x20-\x7e]+$/;

function checkBytes(s: string, what: string): void {
  // A UTF-16 code unit is at most 3 UTF-8 bytes, so short strings need no count.
  if (s.length * 3 > MAX_PART_BYTES && Buffer.byteLength(s, 'utf8') > MAX_PART_BYTES) {
    throw new PrecisError(`${what}: longer than ${MAX_PART_BYTES} bytes`);
  }
}

// ---- profiles ----

/**
 * UsernameCaseMapped (RFC 8265 §3.3) enforcement: width mapping, lower-casing (Unicode
 * toLowerCase applied code point by code point, with no context-dependent final-sigma
 * rule), NFC, the Bidi Rule, IdentifierClass. Throws PrecisError for an empty or
 * disallowed result.
 */
export function prepareUsername(input: string): string {
  return usernameCaseMapped(input, 'username');
}

function usernameCaseMapped(input: string, what: string): string {
  if (input === '') throw new PrecisError(`${what}: empty`);
  if (RE_ASCII_IDENTIFIER.test(input)) return input.toLowerCase(); // ASCII7 is PVALID, has no RTL
  let s = '';
  for (const ch of input) {
    const cp = ch.codePointAt(0)!;
    const mapped = isWidthMapped(cp) ? ch.normalize('NFKC') : ch;
    s += mapped.toLowerCase();
  }
  s = s.normalize('NFC');
  if (s === '') throw new PrecisError(`${what}: empty`);
  const cps = codePoints(s);
  enforceClass(cps, false, what);
  enforceBidi(cps, what);
  return s;
}

/**
 * OpaqueString (RFC 8265 §4.2) enforcement: non-ASCII spaces to U+0020, NFC, FreeformClass.
 * No width or case mapping. Throws PrecisError for an empty or disallowed result.
 */
export function preparePassword(input: string): string {
  return prepareOpaque(input, 'password');
}

function prepareOpaque(input: string, what: string): string {
  if (input === '') throw new PrecisError(`${what}: empty`);
  if (RE_ASCII_FREEFORM.test(input)) return input;
  const s = input.replace(/\p{Zs}/gu, ' ').normalize('NFC');
  enforceClass(codePoints(s), true, what);
  return s;
}

const LOCALPART_FORBIDDEN = /["&'/:<>@]/;

/**
 * RFC 7622 §3.3 localpart: UsernameCaseMapped, without the characters `" & ' / : < > @`,
 * 1 to 1023 bytes.
 */
export function prepareLocalpart(input: string): string {
  const s = usernameCaseMapped(input, 'localpart');
  const bad = LOCALPART_FORBIDDEN.exec(s);
  if (bad) throw new PrecisError(`localpart: ${describe(bad[0].charCodeAt(0))} is not allowed`);
  checkBytes(s, 'localpart');
  return s;
}

/** RFC 7622 §3.4 resourcepart: OpaqueString, 1 to 1023 bytes. */
export function prepareResource(input: string): string {
  const s = prepareOpaque(input, 'resourcepart');
  checkBytes(s, 'resourcepart');
  return s;
}

// Exposed for tests of the approximations.
export const _internal = { isVirama, bidiClass };
