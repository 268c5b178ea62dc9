import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Jid, JidError, parseJid, prepareDomainpart, tryParseJid } from '../../src/router/jid.ts';

// RFC 7622 §3.5: examples of valid JIDs, with their normalised forms.
const VALID: [string, string, string, string][] = [
  ['juliet@example.com', 'juliet', 'example.com', ''],
  ['juliet@example.com/foo', 'juliet', 'example.com', 'foo'],
  ['juliet@example.com/foo bar', 'juliet', 'example.com', 'foo bar'],
  ['juliet@example.com/foo@bar', 'juliet', 'example.com', 'foo@bar'],
  ['foo\\20bar@example.com', 'foo\\20bar', 'example.com', ''],
  ['fussball@example.com', 'fussball', 'example.com', ''],
  ['fußball@example.com', 'fußball', 'example.com', ''],
  ['π@example.com', 'π', 'example.com', ''],
  ['Σ@example.com/foo', 'σ', 'example.com', 'foo'],
  ['σ@example.com/foo', 'σ', 'example.com', 'foo'],
  ['ς@example.com/foo', 'ς', 'example.com', 'foo'],
  ['king@example.com/♚', 'king', 'example.com', '♚'],
  ['example.com', '', 'example.com', ''],
  ['example.com/foobar', '', 'example.com', 'foobar'],
  ['a.example.com/b@example.net', '', 'a.example.com', 'b@example.net'],
];

// RFC 7622 §3.5: examples of invalid JIDs.
const INVALID = [
  '"juliet"@example.com', // quotation marks in a localpart
  'foo bar@example.com', // space in a localpart
  'juliet@example.com/', // empty resourcepart
  '@example.com/', // empty localpart and resourcepart
  'henriⅣ@example.com', // U+2163 ROMAN NUMERAL FOUR
  '♚@example.com', // symbol in a localpart
  'juliet@', // empty domainpart
  '/foobar', // empty domainpart
];

test('RFC 7622 §3.5 valid JIDs', () => {
  for (const [input, local, domain, resource] of VALID) {
    const jid = parseJid(input);
    assert.equal(jid.local, local, input);
    assert.equal(jid.domain, domain, input);
    assert.equal(jid.resource, resource, input);
  }
  assert.equal(parseJid('Σ@example.com/foo').full, 'σ@example.com/foo');
});

test('RFC 7622 §3.5 invalid JIDs', () => {
  for (const input of INVALID) {
    assert.throws(() => parseJid(input), JidError, input);
    assert.equal(tryParseJid(input), undefined);
  }
});

test('split rules: first / starts the resource, first @ before it ends the localpart', () => {
  const a = parseJid('a@b/c@d/e');
  assert.deepEqual([a.local, a.domain, a.resource], ['a', 'b', 'c@d/e']);
  assert.throws(() => parseJid('a@b@c'), JidError); // '@' left in the domainpart
  assert.throws(() => parseJid('@example.com'), JidError);
  assert.throws(() => parseJid(''), JidError);
});

test('normalisation: case, width, NFC, trailing dot', () => {
  assert.equal(parseJid('Juliet@Example.COM/Balcony').full, 'juliet@example.com/Balcony');
  assert.equal(parseJid('ＪＵＬＩＥＴ@example.com').local, 'juliet');
  assert.equal(parseJid('A\u030a@example.com').local, 'å');
  assert.equal(parseJid('juliet@example.com.').domain, 'example.com');
  assert.equal(parseJid('juliet@example.com./r').full, 'juliet@example.com/r');
  assert.throws(() => parseJid('juliet@example.com..'), JidError);
  assert.equal(parseJid('r@example.com/ＲＥＳ').resource, 'ＲＥＳ'); // resources keep width and case
  assert.equal(parseJid('r@example.com/a\u00a0b').resource, 'a b');
  assert.equal(parseJid('a@b/c').full, parseJid('A@B/c').full);
});

test('internationalised domains', () => {
  assert.equal(parseJid('x@Bücher.Example').domain, 'bücher.example');
  assert.equal(parseJid('x@xn--bcher-kva.example').domain, 'bücher.example');
  assert.equal(parseJid('x@例え。テスト。').domain, '例え.テスト');
  assert.equal(parseJid('x@ΣΣ.com').domain, 'σσ.com');
  assert.throws(() => parseJid('x@xn--zz.com'), JidError); // bad punycode
  assert.throws(() => parseJid('x@a b.com'), JidError);
  assert.throws(() => parseJid('x@exa_mple.com'), JidError);
  assert.throws(() => parseJid('x@-a.com'), JidError);
  assert.throws(() => parseJid('x@a-.com'), JidError);
  assert.throws(() => parseJid('x@ab--cd.com'), JidError);
  assert.throws(() => parseJid('x@a..b'), JidError);
  assert.throws(() => parseJid('x@⑴.com'), JidError);
  assert.equal(prepareDomainpart('localhost'), 'localhost');
});

test('IP literals', () => {
  assert.equal(parseJid('x@192.168.0.1').domain, '192.168.0.1');
  assert.equal(parseJid('x@[::1]/r').domain, '[::1]');
  assert.equal(parseJid('x@[2001:DB8:0:0::1]').domain, '[2001:db8::1]');
  for (const bad of ['x@1.2.3', 'x@256.1.1.1', 'x@0x7f.1', 'x@[::1', 'x@[nothost]', 'x@[fe80::1%eth0]', 'x@::1']) {
    assert.throws(() => parseJid(bad), JidError, bad);
  }
});

test('length limits: 1023 bytes per part', () => {
  const label = 'a'.repeat(63);
  const domain1023 = Array(16).fill(label).join('.'); // 16 * 64 - 1 = 1023
  assert.equal(parseJid(`${'l'.repeat(1023)}@example.com/${'r'.repeat(1023)}`).local.length, 1023);
  assert.equal(parseJid(domain1023).domain.length, 1023);
  assert.throws(() => parseJid(`${'l'.repeat(1024)}@example.com`), JidError);
  assert.throws(() => parseJid(`example.com/${'r'.repeat(1024)}`), JidError);
  assert.throws(() => parseJid(`${domain1023}a`), JidError);
  assert.throws(() => parseJid('x'.repeat(5000)), JidError);
});

test('Jid API', () => {
  const jid = parseJid('Juliet@Example.com/Balcony');
  assert.equal(jid.bare, 'juliet@example.com');
  assert.equal(jid.full, 'juliet@example.com/Balcony');
  assert.equal(jid.toString(), jid.full);
  assert.equal(jid.isBare, false);
  assert.equal(jid.toBare().full, 'juliet@example.com');
  assert.equal(jid.toBare().isBare, true);
  const bare = jid.toBare();
  assert.equal(bare.toBare(), bare);
  assert.equal(jid.withResource('Orchard').full, 'juliet@example.com/Orchard');
  assert.equal(jid.withResource('a\u3000b').resource, 'a b');
  assert.equal(jid.withResource('').full, 'juliet@example.com');
  assert.throws(() => jid.withResource('bad\u0000'), JidError);
  assert.equal(new Jid('', 'example.com').full, 'example.com');
  assert.equal(tryParseJid(undefined), undefined);
  assert.equal(parseJid('juliet@example.com'), parseJid('juliet@example.com')); // cached
});
