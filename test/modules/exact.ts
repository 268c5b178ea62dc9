/**
 * Exact stanza checks for module tests: like the harness's subset matching (same pattern
 * syntax, `{{any}}` included), but the element must have no attribute and no child element
 * beyond those of the pattern, at every level, and text must match wherever the pattern has
 * some or the element has some (namespace declarations aside).
 */
import { strict as assert } from 'node:assert';
import type { Element } from 'ltx';
import { mismatch, parsePattern } from '../support/index.ts';

const isDeclaration = (name: string) => name === 'xmlns' || name.startsWith('xmlns:');

function extra(pattern: Element, actual: Element, path: string): string | undefined {
  const here = `${path}/${actual.name}`;
  for (const name of Object.keys(actual.attrs)) {
    if (!isDeclaration(name) && !(name in pattern.attrs)) return `${here}: unexpected attribute ${name}='${actual.attrs[name]}'`;
  }
  if (pattern.getText().trim() === '' && actual.getText().trim() !== '') return `${here}: unexpected text ${JSON.stringify(actual.getText())}`;
  const expected = pattern.getChildElements();
  const got = actual.getChildElements();
  if (expected.length !== got.length) {
    return `${here}: ${got.length} child elements (${got.map((c) => `<${c.name}>`).join('')}), expected ${expected.length}`;
  }
  for (let i = 0; i < got.length; i++) {
    const reason = extra(expected[i], got[i], here);
    if (reason !== undefined) return reason;
  }
  return undefined;
}

/** Throws unless `actual` is exactly the pattern. */
export function assertExact(actual: Element, pattern: string): void {
  const expected = parsePattern(pattern);
  const reason = mismatch(expected, actual) ?? extra(expected, actual, '');
  assert.equal(reason, undefined, `expected exactly ${pattern}\nreceived ${actual.toString()}`);
}

export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** An IQ error reply pattern: `<iq type='error' id from? to?><error type><condition/>[<text/>]</error></iq>`. */
export function iqError(options: { id: string; from?: string; to?: string; condition: string; type: string; text?: string }): string {
  const from = options.from === undefined ? '' : ` from='${options.from}'`;
  const to = options.to === undefined ? '' : ` to='${options.to}'`;
  const text = options.text === undefined ? '' : `<text xmlns='${NS_STANZAS}' xml:lang='en'>${options.text}</text>`;
  return `<iq type='error' id='${options.id}'${from}${to}><error type='${options.type}'><${options.condition} xmlns='${NS_STANZAS}'/>${text}</error></iq>`;
}
