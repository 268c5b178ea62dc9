/**
 * Stored elements are read back one after another by one parser inside one stream: each
 * reading stands alone, and whatever is not exactly one well-formed element is refused
 * without disturbing the next.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStoredElement } from '../../src/xml/stored.ts';

const good = "<message to='bob@localhost' type='chat'><body>hi &amp; bye</body></message>";

describe('parseStoredElement', () => {
  test('reads an element back as it was written, many times in turn', () => {
    for (let i = 0; i < 1000; i++) {
      const xml = `<message id='m${i}'><body>n${i} é ✓</body><x xmlns='urn:x' a='${i}'/></message>`;
      const element = parseStoredElement(xml);
      assert.ok(element);
      assert.equal(element.toString(), xml);
      assert.equal(element.attrs.id, `m${i}`);
      assert.equal(element.getChildText('body'), `n${i} é ✓`);
    }
  });

  const refused: [string, string][] = [
    ['two elements', `${good}${good}`],
    ['an unclosed element', "<message><body>hi</body>"],
    ['an end tag alone', '</message>'],
    ['text', 'hello'],
    ['text after the element', `${good}hello`],
    ['half a tag after the element', `${good}<mess`],
    ['the stream end after the element', `${good}</stream:stream>`],
    ['an undeclared prefix', "<message><x:a/></message>"],
    ['an undeclared entity', '<message><body>&nbsp;</body></message>'],
    ['a comment', '<message><!-- no --></message>'],
    ['nothing', ''],
  ];
  for (const [what, xml] of refused) {
    test(`refuses ${what}, and the next element is read as if nothing had come before`, () => {
      assert.equal(parseStoredElement(xml), undefined);
      const next = parseStoredElement(good);
      assert.ok(next);
      assert.equal(next.toString(), good);
      assert.equal(next.getChildText('body'), 'hi & bye');
    });
  }

  test('a namespace prefix declared in one element is not in scope for the next', () => {
    assert.ok(parseStoredElement("<message xmlns:x='urn:x'><x:a/></message>"));
    assert.equal(parseStoredElement('<message><x:a/></message>'), undefined);
  });

  test('an element split by an earlier unclosed one is not completed by it', () => {
    assert.equal(parseStoredElement('<message><body>'), undefined);
    assert.equal(parseStoredElement('hi</body></message>'), undefined);
  });
});
