/**
 * Property-based fuzzing of the stream tokenizer (src/xml/parser.ts) with fast-check:
 * generated valid streams, mutations of them, and XML-flavoured garbage. Whatever the input:
 * write() never throws, at most one error is reported, any split of the input into chunks
 * gives the same events, and every stanza accepted survives a round trip through
 * toString(). Valid streams must come back exactly as generated.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StreamParser, type ParserOptions } from '../../src/xml/parser.ts';
import { XmlElement, type XmlNode } from '../../src/xml/element.ts';

const NS_STREAM = 'http://etherx.jabber.org/streams';
const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='example.com' version='1.0'>`;
const OPTIONS: ParserOptions = { maxStanzaBytes: 4000, maxDepth: 12 };
const ROOMY: ParserOptions = { maxStanzaBytes: 10_000_000, maxDepth: 1000 };
/** Fixed seed so that a failure can be replayed; FUZZ_SEED=n and FUZZ_SCALE=k explore further. */
const SEED = Number(process.env.FUZZ_SEED ?? 20240611);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);

interface Result {
  events: string[];
  stanzas: XmlElement[];
  errors: number;
}

function tree(node: XmlNode): unknown {
  if (typeof node === 'string') return node;
  return [node.name, Object.entries(node.attrs), node.children.map(tree)];
}

function run(chunks: Uint8Array[], options: ParserOptions = OPTIONS): Result {
  const result: Result = { events: [], stanzas: [], errors: 0 };
  const parser = new StreamParser(
    {
      streamStart: (name, attrs) => result.events.push(`start ${name} ${JSON.stringify(Object.entries(attrs))}`),
      stanza: (element) => {
        result.stanzas.push(element);
        result.events.push(`stanza ${JSON.stringify(tree(element))}`);
      },
      streamEnd: () => result.events.push('end'),
      error: (condition) => {
        result.errors++;
        result.events.push(`error ${condition}`);
      },
    },
    options,
  );
  for (const chunk of chunks) parser.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  return result;
}

function split(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    chunks.push(data.subarray(at, p));
    at = p;
  }
  chunks.push(data.subarray(at));
  return chunks;
}

/** The invariants every input must satisfy; returns the whole-input result. */
function check(data: Uint8Array, cuts: number[], options: ParserOptions = OPTIONS): Result {
  const whole = run([data], options);
  assert.ok(whole.errors <= 1, 'at most one error');
  assert.deepEqual(run(split(data, cuts), options).events, whole.events, 'a split changes the outcome');
  if (data.length <= 600) {
    const bytes: Uint8Array[] = [];
    for (let i = 0; i < data.length; i++) bytes.push(data.subarray(i, i + 1));
    assert.deepEqual(run(bytes, options).events, whole.events, 'byte-by-byte changes the outcome');
  }
  for (const stanza of whole.stanzas) {
    const again = run([Buffer.from(HEADER + stanza.toString())], ROOMY);
    assert.equal(again.errors, 0, `round trip of ${stanza} fails: ${again.events.at(-1)}`);
    assert.equal(again.stanzas.length, 1);
    assert.deepEqual(tree(again.stanzas[0]), tree(stanza), 'round trip changes the stanza');
  }
  return whole;
}

// --- generators ---------------------------------------------------------------------------

const FORBIDDEN = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/g;

/** Text and attribute values: XML specials, whitespace, non-ASCII, and any Unicode Char. */
const xmlText = fc.oneof(
  fc.string({ unit: fc.constantFrom('<', '>', '&', "'", '"', ']', ']]>', '\r', '\t', '\n', ' ', 'a', 'Z', 'é', '€', '😀', ';', '#', '&amp;'), maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }).map((s) => s.replace(FORBIDDEN, '?')),
);

const LOCAL = ['message', 'body', 'iq', 'query', 'x', 'item', 'é', 'a.b', 'a-b', '_c', 'ü日'];
const ATTRS = ['id', 'to', 'from', 'type', 'xml:lang', 'stream:a', 'p:b', 'q', '__proto__', 'é'];

interface Spec {
  local: string;
  prefix: '' | 'p' | 'stream';
  attrs: [string, string][];
  children: (Spec | string)[];
}

const { spec } = fc.letrec<{ spec: Spec }>((tie) => ({
  spec: fc.record({
    local: fc.constantFrom(...LOCAL),
    prefix: fc.constantFrom<('' | 'p' | 'stream')[]>('', '', '', 'p', 'stream'),
    attrs: fc.uniqueArray(fc.tuple(fc.constantFrom(...ATTRS), xmlText), { selector: (a) => a[0], maxLength: 4 }),
    children: fc.array(fc.oneof({ depthSize: 'small' }, xmlText, tie('spec')), { maxLength: 4 }),
  }),
}));

/** The element a spec stands for: p: prefixes are declared where used, stream: comes from the header. */
function build(s: Spec, pDeclared = false): XmlElement {
  const attrs: Record<string, string> = {};
  const usesP = s.prefix === 'p' || s.attrs.some(([k]) => k.startsWith('p:'));
  if (usesP && !pDeclared) attrs['xmlns:p'] = 'urn:p';
  for (const [k, v] of s.attrs) {
    if (k === '__proto__') Object.defineProperty(attrs, k, { value: v, enumerable: true, writable: true, configurable: true });
    else attrs[k] = v;
  }
  const children: XmlNode[] = [];
  for (const child of s.children) {
    if (typeof child === 'string') {
      if (child === '') continue;
      const last = children.length - 1;
      if (last >= 0 && typeof children[last] === 'string') children[last] += child;
      else children.push(child);
    } else {
      children.push(build(child, pDeclared || usesP));
    }
  }
  return new XmlElement(s.prefix === '' ? s.local : `${s.prefix}:${s.local}`, attrs, children);
}

function usesStream(e: XmlElement): boolean {
  if (e.name.startsWith('stream:') || Object.keys(e.attrs).some((k) => k.startsWith('stream:'))) return true;
  return e.children.some((c) => typeof c !== 'string' && usesStream(c));
}

/** What the parser should emit for a generated stanza: header prefixes copied onto it. */
function expected(e: XmlElement): XmlElement {
  const copy = e.clone();
  if (usesStream(e)) copy.attrs['xmlns:stream'] = NS_STREAM;
  return copy;
}

const stanzas = fc.array(spec.map((s) => build(s)), { minLength: 1, maxLength: 5 });
const cuts = fc.array(fc.nat(), { maxLength: 12 });
const keepalive = fc.constantFrom('', ' ', '\n', '\r\n\t ');

function stream(elements: XmlElement[], gaps: string[]): string {
  let out = HEADER;
  elements.forEach((e, i) => { out += (gaps[i] ?? '') + e.toString(); });
  return out + '</stream:stream>';
}

const SNIPPETS = ['<!', '<!--', '<!DOCTYPE x>', '&', '&foo;', '&#0;', '&#x41;', '<?', '<?xml?>', ']]>', '<![CDATA[', '<', '>', '/', "'", '"', '=', '\x00', '\x01', ' xmlns:q=""', ' a="1"', '</stream:stream>', '<stream:stream>', 'é', '\u{1F600}'];

type Mutation =
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; at: number; length: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom(...SNIPPETS) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
);

function mutate(data: Buffer, mutations: Mutation[]): Buffer {
  let out = data;
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % out.length;
    switch (m.kind) {
      case 'flip': out = Buffer.from(out); if (out.length > 0) out[at] = m.byte; break;
      case 'insert': out = Buffer.concat([out.subarray(0, at), Buffer.from(m.text), out.subarray(at)]); break;
      case 'delete': out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]); break;
      case 'truncate': out = out.subarray(0, at); break;
      case 'duplicate': out = Buffer.concat([out.subarray(0, at + m.length), out.subarray(at)]); break;
    }
  }
  return out;
}

const TOKENS = ['<', '>', '/', '/>', '</', 'a', 'b:c', 'stream:stream', 'message', '=', "'", '"', '&', '#', 'x', ';', '&amp;', '&#65;', '&#x1F600;', '<!', '<?', '<?xml', " version='1.0'", '?>', '[CDATA[', ']]>', ']', ' ', '\n', 'é', '\x01', 'xmlns', 'xmlns:p', ':', "='urn:p'", '\uFFFF'];

const CONDITIONS = new Set(['not-well-formed', 'restricted-xml', 'unsupported-encoding', 'policy-violation']);

// --- properties ------------------------------------------------------------------------------

test('valid streams come back exactly as generated, however they are split', () => {
  fc.assert(
    fc.property(stanzas, fc.array(keepalive, { maxLength: 5 }), cuts, (elements, gaps, cutPoints) => {
      const data = Buffer.from(stream(elements, gaps));
      const result = check(data, cutPoints, ROOMY);
      assert.equal(result.errors, 0, result.events.at(-1));
      assert.equal(result.events.at(-1), 'end');
      assert.deepEqual(result.stanzas.map(tree), elements.map((e) => tree(expected(e))));
    }),
    { seed: SEED, numRuns: 300 * SCALE },
  );
});

test('mutated streams: no throw, one error at most, split-independent, accepted stanzas round-trip', () => {
  fc.assert(
    fc.property(stanzas, fc.array(mutation, { minLength: 1, maxLength: 4 }), cuts, (elements, mutations, cutPoints) => {
      check(mutate(Buffer.from(stream(elements, [])), mutations), cutPoints);
    }),
    { seed: SEED, numRuns: 700 * SCALE },
  );
});

test('XML-flavoured garbage after a valid header', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 60 }), cuts, (tokens, cutPoints) => {
      check(Buffer.from(HEADER + tokens.join('')), cutPoints);
    }),
    { seed: SEED, numRuns: 1500 * SCALE },
  );
});

test('random bytes, alone and after a valid header', () => {
  fc.assert(
    fc.property(fc.boolean(), fc.uint8Array({ maxLength: 300 }), cuts, (withHeader, bytes, cutPoints) => {
      check(withHeader ? Buffer.concat([Buffer.from(HEADER), bytes]) : bytes, cutPoints);
    }),
    { seed: SEED, numRuns: 700 * SCALE },
  );
});

test('small limits: oversized and deep input fails cleanly wherever it is split', () => {
  const tight: ParserOptions = { maxStanzaBytes: 120, maxDepth: 3 };
  fc.assert(
    fc.property(stanzas, fc.array(mutation, { maxLength: 2 }), cuts, (elements, mutations, cutPoints) => {
      const result = check(mutate(Buffer.from(stream(elements, [])), mutations), cutPoints, tight);
      const error = result.events.find((e) => e.startsWith('error '));
      if (error !== undefined) assert.ok(CONDITIONS.has(error.slice(6)), error);
      // Unmutated, the only possible complaint is the size or the depth.
      if (mutations.length === 0 && error !== undefined) assert.equal(error, 'error policy-violation');
    }),
    { seed: SEED, numRuns: 400 * SCALE },
  );
});
