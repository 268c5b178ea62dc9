import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PrecisError,
  derivedProperty,
  prepareLocalpart,
  preparePassword,
  prepareResource,
  prepareUsername,
  _internal,
} from '../../src/auth/precis.ts';

test('derived properties (RFC 8264 §8)', () => {
  assert.equal(derivedProperty(0x61), 'PVALID'); // a
  assert.equal(derivedProperty(0x20), 'FREE_PVAL'); // space: ID_DIS / FREE_PVAL
  assert.equal(derivedProperty(0x09), 'DISALLOWED'); // control
  assert.equal(derivedProperty(0xdf), 'PVALID'); // ß, exception
  assert.equal(derivedProperty(0x0640), 'DISALLOWED'); // tatweel, exception
  assert.equal(derivedProperty(0x00b7), 'CONTEXTO');
  assert.equal(derivedProperty(0x200d), 'CONTEXTJ');
  assert.equal(derivedProperty(0x1100), 'DISALLOWED'); // old Hangul jamo
  assert.equal(derivedProperty(0xad), 'DISALLOWED'); // soft hyphen, default ignorable
  assert.equal(derivedProperty(0xfdd0), 'DISALLOWED'); // noncharacter
  assert.equal(derivedProperty(0x2163), 'FREE_PVAL'); // Ⅳ, has compatibility mapping
  assert.equal(derivedProperty(0x265a), 'FREE_PVAL'); // ♚ symbol
  assert.equal(derivedProperty(0xa1), 'FREE_PVAL'); // ¡ punctuation
  assert.equal(derivedProperty(0x0378), 'UNASSIGNED');
  assert.equal(derivedProperty(0xe000), 'DISALLOWED'); // private use
  assert.equal(derivedProperty(0xd800), 'DISALLOWED'); // surrogate
  assert.equal(derivedProperty(0x2028), 'DISALLOWED'); // line separator
  assert.equal(derivedProperty(0x4e2d), 'PVALID'); // 中
});

test('UsernameCaseMapped: case mapping', () => {
  assert.equal(prepareUsername('Juliet'), 'juliet');
  assert.equal(prepareUsername('ΣΑΣ'), 'σασ'); // no final-sigma context rule
  assert.equal(prepareUsername('ς'), 'ς');
  assert.equal(prepareUsername('ÅSA'), 'åsa');
  assert.equal(prepareUsername('fußball'), 'fußball'); // ß is not case-folded to ss
});

test('UsernameCaseMapped: width mapping', () => {
  assert.equal(prepareUsername('ＪＵＬＩＥＴ'), 'juliet');
  assert.equal(prepareUsername('ｶﾞ'), 'ガ'); // halfwidth katakana + voiced mark, composed by NFC
  assert.throws(() => prepareUsername('a\u3000b'), PrecisError); // ideographic space → space → disallowed
});

test('UsernameCaseMapped: NFC', () => {
  assert.equal(prepareUsername('A\u030a'), '\u00e5');
  assert.equal(prepareUsername('\u212b'), '\u00e5'); // ANGSTROM SIGN
  assert.equal(prepareUsername('e\u0301'), 'é');
  assert.equal(prepareUsername('\u1100\u1161'), '\uac00'); // conjoining jamo compose into a syllable
});

test('UsernameCaseMapped: disallowed code points', () => {
  for (const bad of ['', 'foo bar', 'henriⅣ', '♚', 'a\u0000', 'a\u200bb', 'a\u00adb', 'tab\t', 'x\u2028', 'a\ue000', '\ufdd0', 'a\u0378', 'a\u1100']) {
    assert.throws(() => prepareUsername(bad), PrecisError, JSON.stringify(bad));
  }
  assert.throws(() => prepareUsername('½'), PrecisError); // compatibility character
});

test('UsernameCaseMapped: contextual rules', () => {
  assert.equal(prepareUsername('l·l'), 'l·l'); // Catalan middle dot between l's
  assert.throws(() => prepareUsername('a·b'), PrecisError);
  assert.equal(prepareUsername('\u0915\u094d\u200d\u0937'), '\u0915\u094d\u200d\u0937'); // ZWJ after virama
  assert.throws(() => prepareUsername('a\u200db'), PrecisError);
  assert.equal(prepareUsername('\u0628\u200c\u0628'), '\u0628\u200c\u0628'); // ZWNJ between joining letters
  assert.throws(() => prepareUsername('a\u200cb'), PrecisError);
  assert.equal(prepareUsername('\u0375\u03b1'), '\u0375\u03b1'); // keraia before Greek
  assert.throws(() => prepareUsername('\u0375a'), PrecisError);
  assert.equal(prepareUsername('\u05d0\u05f3'), '\u05d0\u05f3'); // geresh after Hebrew
  assert.equal(prepareUsername('\u30a2\u30fb\u30a2'), '\u30a2\u30fb\u30a2');
  assert.throws(() => prepareUsername('a\u30fbb'), PrecisError);
  assert.equal(prepareUsername('\u0628\u0661'), '\u0628\u0661');
  assert.throws(() => prepareUsername('\u0628\u0661\u06f1'), PrecisError); // mixed Arabic-Indic digit sets
});

test('virama detection matches Canonical_Combining_Class 9', () => {
  assert.equal(_internal.isVirama(0x094d), true); // DEVANAGARI SIGN VIRAMA
  assert.equal(_internal.isVirama(0x0dca), true); // SINHALA SIGN AL-LAKUNA
  assert.equal(_internal.isVirama(0x0301), false);
  assert.equal(_internal.isVirama(0x05b0), false);
  assert.equal(_internal.isVirama(0x3099), false);
  assert.equal(_internal.isVirama(0x61), false);
});

test('UsernameCaseMapped: Bidi Rule', () => {
  assert.equal(prepareUsername('שלום'), 'שלום');
  assert.equal(prepareUsername('مرحبا'), 'مرحبا');
  assert.equal(prepareUsername('שלום1'), 'שלום1'); // may end with a European digit
  assert.throws(() => prepareUsername('שלוםabc'), PrecisError); // LTR letters in an RTL string
  assert.throws(() => prepareUsername('abcשלום'), PrecisError); // starts LTR
  assert.throws(() => prepareUsername('1שלום'), PrecisError); // must start with an RTL letter
  assert.throws(() => prepareUsername('שלום-'), PrecisError); // must end with a letter or digit
  assert.equal(prepareUsername('abc-123'), 'abc-123'); // LTR strings are not constrained
});

test('OpaqueString: spaces and passwords', () => {
  assert.equal(preparePassword('correct horse battery staple'), 'correct horse battery staple');
  assert.equal(preparePassword('a\u00a0b\u3000c\u2003d'), 'a b c d'); // non-ASCII spaces → U+0020
  assert.equal(preparePassword('ＰａｓｓＷｏｒｄ'), 'ＰａｓｓＷｏｒｄ'); // no width mapping
  assert.equal(preparePassword('PassWord'), 'PassWord'); // no case mapping
  assert.equal(preparePassword('A\u030a'), '\u00c5'); // NFC
  assert.equal(preparePassword('♚ ½ ¡'), '♚ ½ ¡'); // symbols, compatibility characters, punctuation
  assert.equal(preparePassword(' leading'), ' leading');
  for (const bad of ['', 'tab\there', 'a\u0000', 'a\u200bb', 'a\ue000', 'a\u2028']) {
    assert.throws(() => preparePassword(bad), PrecisError, JSON.stringify(bad));
  }
});

test('localpart: extra forbidden characters and length', () => {
  assert.equal(prepareLocalpart('Juliet'), 'juliet');
  assert.equal(prepareLocalpart('foo\\20bar'), 'foo\\20bar');
  for (const c of ['"', '&', "'", '/', ':', '<', '>', '@']) {
    assert.throws(() => prepareLocalpart(`a${c}b`), PrecisError, c);
    assert.equal(prepareUsername(`a${c}b`), `a${c}b`); // allowed in plain usernames
  }
  assert.equal(prepareLocalpart('a'.repeat(1023)).length, 1023);
  assert.throws(() => prepareLocalpart('a'.repeat(1024)), PrecisError);
  assert.throws(() => prepareLocalpart('é'.repeat(512)), PrecisError); // 1024 bytes
});

test('resourcepart: OpaqueString and length', () => {
  assert.equal(prepareResource('Home Office'), 'Home Office');
  assert.equal(prepareResource('♚'), '♚');
  assert.equal(prepareResource('foo@bar/baz'), 'foo@bar/baz');
  assert.throws(() => prepareResource(''), PrecisError);
  assert.throws(() => prepareResource('x'.repeat(1024)), PrecisError);
});

test('idempotence on a sample', () => {
  for (const s of ['Juliet', 'ＪＵＬＩＥＴ', 'ΣΑΣ', 'A\u030a', 'שלום', 'ｶﾞ']) {
    const once = prepareUsername(s);
    assert.equal(prepareUsername(once), once);
  }
});
