/**
 * The stream tokenizer (src/xml/parser.ts). Every case is run three ways — the input in one
 * chunk, one byte at a time, and in several random splits — and all must report exactly the
 * same events.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamParser, type ParserOptions } from '../../src/xml/parser.ts';
import type { XmlElement, XmlNode } from '../../src/xml/element.ts';
import type { StreamErrorCondition } from '../../src/xml/errors.ts';
import { seeded } from '../support/random.ts';

const HEADER = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
const NS_STREAM = 'http://etherx.jabber.org/streams';
const DEFAULTS: ParserOptions = { maxStanzaBytes: 10_000, maxDepth: 20 };

type Event =
  | { type: 'start'; name: string; attrs: Record<string, string> }
  | { type: 'stanza'; tree: unknown; xml: string }
  | { type: 'end' }
  | { type: 'error'; condition: StreamErrorCondition };

/** A structural copy of an element: distinguishes ['a', 'b'] from ['ab'] and keeps attribute order. */
function tree(node: XmlNode): unknown {
  if (typeof node === 'string') return node;
  return { name: node.name, attrs: Object.entries(node.attrs), children: node.children.map(tree) };
}

function feed(chunks: Buffer[], options: ParserOptions = DEFAULTS): Event[] {
  const events: Event[] = [];
  const parser = new StreamParser(
    {
      streamStart: (name, attrs) => events.push({ type: 'start', name, attrs: { ...attrs } }),
      stanza: (element: XmlElement) => events.push({ type: 'stanza', tree: tree(element), xml: element.toString() }),
      streamEnd: () => events.push({ type: 'end' }),
      error: (condition) => events.push({ type: 'error', condition }),
    },
    options,
  );
  for (const chunk of chunks) parser.write(chunk);
  return events;
}

function splits(data: Buffer, seed: number): Buffer[] {
  const random = seeded(seed);
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const size = 1 + Math.floor(random() * (random() < 0.5 ? 4 : 64));
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** Parse the input whole, byte by byte and in random splits; assert they agree; return the events. */
function parse(input: string | Buffer, options: ParserOptions = DEFAULTS): Event[] {
  const data = typeof input === 'string' ? Buffer.from(input) : input;
  const whole = feed([data], options);
  const bytes: Buffer[] = [];
  for (let i = 0; i < data.length; i++) bytes.push(data.subarray(i, i + 1));
  assert.deepEqual(feed(bytes, options), whole, 'byte-by-byte differs from whole');
  for (let seed = 1; seed <= 6; seed++) {
    assert.deepEqual(feed(splits(data, seed), options), whole, `split with seed ${seed} differs from whole`);
  }
  return whole;
}

function errorOf(events: Event[]): StreamErrorCondition | undefined {
  const errors = events.filter((e) => e.type === 'error');
  assert.ok(errors.length <= 1, 'at most one error');
  return errors[0]?.type === 'error' ? errors[0].condition : undefined;
}

function stanzas(events: Event[]): string[] {
  return events.flatMap((e) => (e.type === 'stanza' ? [e.xml] : []));
}

/** Assert that the stream (header added) fails with this condition. */
function rejects(body: string | Buffer, condition: StreamErrorCondition, options?: ParserOptions): Event[] {
  const data = typeof body === 'string' ? Buffer.from(HEADER + body) : Buffer.concat([Buffer.from(HEADER), body]);
  const events = parse(data, options);
  assert.equal(errorOf(events), condition, `expected ${condition} for ${JSON.stringify(String(body).slice(0, 200))}`);
  return events;
}

/** Assert that the stream (header added) parses without error into these stanzas. */
function accepts(body: string, expected?: string[], options?: ParserOptions): Event[] {
  const events = parse(HEADER + body, options);
  assert.equal(errorOf(events), undefined, `unexpected error for ${JSON.stringify(body.slice(0, 200))}`);
  if (expected !== undefined) assert.deepEqual(stanzas(events), expected);
  return events;
}

describe('stream framing', () => {
  test('header, stanzas and end', () => {
    const events = parse(`<?xml version='1.0'?>${HEADER}<message to='a@b'><body>hi</body></message><presence/></stream:stream>`);
    assert.deepEqual(events.map((e) => e.type), ['start', 'stanza', 'stanza', 'end']);
    const start = events[0];
    assert.ok(start.type === 'start');
    assert.equal(start.name, 'stream:stream');
    assert.deepEqual(start.attrs, { xmlns: 'jabber:client', 'xmlns:stream': NS_STREAM, to: 'example.com', version: '1.0' });
    assert.deepEqual(stanzas(events), ["<message to='a@b'><body>hi</body></message>", '<presence/>']);
  });

  test('the XML declaration is optional and may use double quotes, encoding and standalone', () => {
    for (const decl of ['', "<?xml version='1.0'?>", '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0' encoding='utf-8' standalone='yes'?>", "<?xml  version = '1.1'  ?>\n"]) {
      const events = parse(`${decl}${HEADER}<presence/>`);
      assert.deepEqual(events.map((e) => e.type), ['start', 'stanza'], decl);
    }
  });

  test('a UTF-8 byte order mark and whitespace may precede the header', () => {
    const events = parse(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`<?xml version='1.0'?>\n\n${HEADER}`)]));
    assert.deepEqual(events.map((e) => e.type), ['start']);
    assert.deepEqual(parse(`  \r\n\t${HEADER}`).map((e) => e.type), ['start']);
  });

  test('whitespace between stanzas is ignored', () => {
    accepts(' \n\t\r <presence/> \n <presence/>  ', ['<presence/>', '<presence/>']);
  });

  test('a self-closing header opens and closes the stream', () => {
    const events = parse("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>");
    assert.deepEqual(events.map((e) => e.type), ['start', 'end']);
  });

  test('input after the stream end is ignored', () => {
    const events = parse(`${HEADER}</stream:stream><presence/>garbage<!DOCTYPE`);
    assert.deepEqual(events.map((e) => e.type), ['start', 'end']);
  });

  test('whitespace in end tags', () => {
    accepts('<message><body>x</body\n></message >', ['<message><body>x</body></message>']);
    const events = parse(`${HEADER}</stream:stream  >`);
    assert.deepEqual(events.map((e) => e.type), ['start', 'end']);
  });
});

describe('content', () => {
  test('text is unescaped: predefined entities and character references', () => {
    const events = accepts("<message><body>&lt;&gt;&amp;&quot;&apos; &#65;&#x42;&#X;</body></message>".replace('&#X;', '&#x1F600;'));
    const stanza = events[1];
    assert.ok(stanza.type === 'stanza');
    assert.deepEqual(stanza.tree, { name: 'message', attrs: [], children: [{ name: 'body', attrs: [], children: ["<>&\"' AB😀"] }] });
  });

  test('attribute values are unescaped and either quote works', () => {
    const events = accepts(`<iq id="a'b" type='x"y' to = 'a&amp;b&#x3c;' from\n=\n"&apos;"/>`);
    const stanza = events[1];
    assert.ok(stanza.type === 'stanza');
    assert.deepEqual(stanza.tree, { name: 'iq', attrs: [['id', "a'b"], ['type', 'x"y'], ['to', 'a&b<'], ['from', "'"]], children: [] });
  });

  test('CDATA sections become text, merged with the text around them', () => {
    const events = accepts('<message><body>a<![CDATA[<b>&amp;]]]]><![CDATA[]]>c]]</body></message>');
    const stanza = events[1];
    assert.ok(stanza.type === 'stanza');
    assert.deepEqual(stanza.tree, { name: 'message', attrs: [], children: [{ name: 'body', attrs: [], children: ['a<b>&amp;]]c]]'] }] });
  });

  test('mixed content keeps its order and whitespace', () => {
    const events = accepts('<message>\n  <body>x</body>\n  <thread>t</thread>\n</message>');
    const stanza = events[1];
    assert.ok(stanza.type === 'stanza');
    assert.deepEqual(stanza.tree, {
      name: 'message', attrs: [],
      children: ['\n  ', { name: 'body', attrs: [], children: ['x'] }, '\n  ', { name: 'thread', attrs: [], children: ['t'] }, '\n'],
    });
  });

  test('multi-byte UTF-8 in names, attributes and text, split anywhere', () => {
    accepts("<message to='ü@b' id='日本'><bödy>é€😀</bödy></message>", ["<message to='ü@b' id='日本'><bödy>é€😀</bödy></message>"]);
  });

  test("'>' and lone ']' in text are fine", () => {
    accepts('<message><body>a > b ]] ] ]>x</body></message>', ['<message><body>a &gt; b ]] ] ]&gt;x</body></message>']);
  });

  test('an attribute called __proto__ is kept as an ordinary attribute', () => {
    const events = accepts("<message __proto__='x' constructor='y'/>");
    const stanza = events[1];
    assert.ok(stanza.type === 'stanza');
    assert.deepEqual(stanza.tree, { name: 'message', attrs: [['__proto__', 'x'], ['constructor', 'y']], children: [] });
  });

  test('tab, LF and CR are allowed in text and attributes and kept as written', () => {
    const events = accepts("<message a='\t\n'><body>a\r\nb\tc</body></message>");
    const stanza = events[1];
    assert.ok(stanza.type === 'stanza');
    assert.deepEqual(stanza.tree, { name: 'message', attrs: [['a', '\t\n']], children: [{ name: 'body', attrs: [], children: ['a\r\nb\tc'] }] });
  });
});

describe('namespaces', () => {
  test('prefixes declared on the stream header are copied onto the stanza that uses them', () => {
    accepts('<stream:error><x/></stream:error>', [`<stream:error xmlns:stream='${NS_STREAM}'><x/></stream:error>`]);
    accepts('<message><stream:x/></message>', [`<message xmlns:stream='${NS_STREAM}'><stream:x/></message>`]);
    accepts("<message><x stream:a='1'/></message>", [`<message xmlns:stream='${NS_STREAM}'><x stream:a='1'/></message>`]);
  });

  test('a prefix the stanza declares itself is not copied, nor is the default namespace', () => {
    accepts("<stream:x xmlns:stream='urn:other'/>", ["<stream:x xmlns:stream='urn:other'/>"]);
    accepts("<message><p:x xmlns:p='urn:p'><p:y/></p:x></message>", ["<message><p:x xmlns:p='urn:p'><p:y/></p:x></message>"]);
    accepts('<message><body/></message>', ['<message><body/></message>']);
  });

  test('a prefix declared on an ancestor is in scope; on a sibling it is not', () => {
    accepts("<message xmlns:p='urn:p'><a><p:b p:c='1'/></a></message>");
    rejects("<message><a xmlns:p='urn:p'/><p:b/></message>", 'not-well-formed');
  });

  test('the xml prefix is predeclared', () => {
    accepts("<message xml:lang='en'><body xml:lang='fr'>x</body></message>", ["<message xml:lang='en'><body xml:lang='fr'>x</body></message>"]);
    accepts("<message xmlns:xml='http://www.w3.org/XML/1998/namespace'/>");
  });

  test('undeclared prefixes', () => {
    rejects('<p:message/>', 'not-well-formed');
    rejects("<message p:a='1'/>", 'not-well-formed');
    rejects('<message><p:x/></message>', 'not-well-formed');
    const events = parse("<stream:stream xmlns='jabber:client'>");
    assert.equal(errorOf(events), 'not-well-formed');
  });

  test('misuse of xml and xmlns', () => {
    rejects("<message xmlns:xml='urn:wrong'/>", 'not-well-formed');
    rejects("<message xmlns:xmlns='urn:x'/>", 'not-well-formed');
    rejects("<message xmlns:p='http://www.w3.org/XML/1998/namespace'/>", 'not-well-formed');
    rejects("<message xmlns:p='http://www.w3.org/2000/xmlns/'/>", 'not-well-formed');
    rejects("<message xmlns='http://www.w3.org/2000/xmlns/'/>", 'not-well-formed');
    rejects("<message xmlns='http://www.w3.org/XML/1998/namespace'/>", 'not-well-formed');
    rejects("<message xmlns:p=''/>", 'not-well-formed');
    rejects("<xmlns:x xmlns:xmlns='urn:x'/>", 'not-well-formed');
  });

  test('an empty default namespace is allowed', () => {
    accepts("<message><x xmlns=''/></message>");
  });

  test('the same attribute twice through two prefixes', () => {
    rejects("<message xmlns:a='urn:u' xmlns:b='urn:u' a:c='1' b:c='2'/>", 'not-well-formed');
    accepts("<message xmlns:a='urn:u' xmlns:b='urn:v' a:c='1' b:c='2'/>");
  });

  test('qualified names need one colon between two non-empty parts', () => {
    for (const name of [':a', 'a:', 'a:b:c', 'a:1b', 'a:-b']) rejects(`<${name} xmlns:a='urn:a'/>`, 'not-well-formed');
    rejects("<message :a='1'/>", 'not-well-formed');
  });
});

describe('restricted XML (RFC 6120 §11.1)', () => {
  test('comments', () => {
    rejects('<message><!-- hi --></message>', 'restricted-xml');
    rejects('<!-- hi -->', 'restricted-xml');
    assert.equal(errorOf(parse(`<!-- hi -->${HEADER}`)), 'restricted-xml');
  });

  test('DOCTYPE, entity declarations and other <! constructs', () => {
    assert.equal(errorOf(parse(`<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY a 'b'>]>${HEADER}`)), 'restricted-xml');
    rejects('<message><!ENTITY x "y"></message>', 'restricted-xml');
    rejects('<message><![INCLUDE[ x ]]></message>', 'restricted-xml');
    rejects('<message><![cdata[ x ]]></message>', 'restricted-xml');
  });

  test('processing instructions', () => {
    rejects('<message><?php echo 1; ?></message>', 'restricted-xml');
    rejects('<?foo?>', 'restricted-xml');
    rejects("<?xml version='1.0'?>", 'restricted-xml');
    assert.equal(errorOf(parse(`<?xml-stylesheet href='x'?>${HEADER}`)), 'restricted-xml');
    assert.equal(errorOf(parse(` <?xml version='1.0'?>${HEADER}`)), 'restricted-xml');
    assert.equal(errorOf(parse(`<?xml version='1.0'?><?xml version='1.0'?>${HEADER}`)), 'restricted-xml');
  });

  test('entity references other than the predefined five', () => {
    rejects('<message><body>&nbsp;</body></message>', 'restricted-xml');
    rejects("<message a='&foo;'/>", 'restricted-xml');
    rejects('<message><body>&LT;</body></message>', 'restricted-xml');
  });

  test('a billion laughs is refused at <!DOCTYPE, with memory flat', () => {
    let doc = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>";
    for (let i = 1; i < 10; i++) doc += `<!ENTITY lol${i} '${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}'>`;
    doc += `]>${HEADER}<message><body>&lol9;</body></message>`;
    const before = process.memoryUsage().heapUsed;
    const events = parse(doc);
    assert.deepEqual(events, [{ type: 'error', condition: 'restricted-xml' }]);
    assert.ok(process.memoryUsage().heapUsed - before < 50_000_000);
  });
});

describe('encoding', () => {
  test('a declared encoding other than UTF-8', () => {
    for (const enc of ['ISO-8859-1', 'UTF-16', 'US-ASCII']) {
      assert.equal(errorOf(parse(`<?xml version='1.0' encoding='${enc}'?>${HEADER}`)), 'unsupported-encoding', enc);
    }
  });

  test('UTF-16 and UTF-32 input', () => {
    assert.equal(errorOf(parse(Buffer.from('\ufeff<stream:stream>', 'utf16le'))), 'unsupported-encoding');
    assert.equal(errorOf(parse(Buffer.from([0xfe, 0xff, 0x00, 0x3c]))), 'unsupported-encoding');
    assert.equal(errorOf(parse(Buffer.from([0x00, 0x3c, 0x00, 0x3f]))), 'unsupported-encoding');
  });

  test('invalid UTF-8 anywhere', () => {
    const bad: number[][] = [
      [0xc3, 0x28], // bad continuation
      [0x80], // lone continuation byte
      [0xc0, 0xaf], // overlong '/'
      [0xe0, 0x80, 0xaf], // overlong
      [0xf0, 0x80, 0x80, 0xaf], // overlong
      [0xed, 0xa0, 0x80], // surrogate
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
      [0xfe], [0xff], [0xf8, 0x88, 0x80, 0x80, 0x80],
      [0xe2, 0x82], // truncated, then ASCII
    ];
    for (const bytes of bad) {
      for (const [before, after] of [['<message><body>', '</body></message>'], ["<message a='", "'/>"], ['<mess', 'age/>']]) {
        rejects(Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)]), 'not-well-formed');
      }
    }
  });

  test('characters outside the XML Char production', () => {
    for (const ch of ['\x00', '\x01', '\x08', '\x0b', '\x0c', '\x1f', '\uffff', '\ufffe']) {
      rejects(`<message><body>a${ch}</body></message>`, 'not-well-formed');
      rejects(`<message a='${ch}'/>`, 'not-well-formed');
    }
    // DEL and the C1 controls are discouraged but allowed by XML 1.0.
    accepts('<message>\x7f\x80\x9f</message>');
  });
});

describe('well-formedness', () => {
  test('character references must denote a Char', () => {
    for (const ref of ['&#0;', '&#x0;', '&#1;', '&#xB;', '&#xD800;', '&#xDFFF;', '&#xFFFE;', '&#xFFFF;', '&#x110000;', '&#99999999999999999999;']) {
      rejects(`<message><body>${ref}</body></message>`, 'not-well-formed');
    }
    accepts('<message><body>&#9;&#xA;&#13;&#x10FFFF;&#xFFFD;&#xE000;&#0000065;</body></message>');
  });

  test('malformed references', () => {
    for (const ref of ['&;', '&#;', '&#x;', '&#12a;', '&#xg;', '&lt ', '& ', '&#-1;', '&1a;', '&a b;', '&#ｘ41;']) {
      rejects(`<message><body>${ref}</body></message>`, 'not-well-formed');
      rejects(`<message a='${ref}'/>`, 'not-well-formed');
    }
    rejects('<message><body>&amp</body></message>', 'not-well-formed');
  });

  test('tags must match and nest', () => {
    rejects('<message><body></message></body>', 'not-well-formed');
    rejects('<message></messagex>', 'not-well-formed');
    rejects('<message></Message>', 'not-well-formed');
    rejects('<message><body>x</stream:stream>', 'not-well-formed');
    rejects('</message>', 'not-well-formed');
    assert.equal(errorOf(parse('</stream:stream>')), 'not-well-formed');
  });

  test('attributes: unique, quoted, separated, no <', () => {
    rejects("<message a='1' a='2'/>", 'not-well-formed');
    rejects("<message xmlns='a' xmlns='b'/>", 'not-well-formed');
    rejects('<message a=1/>', 'not-well-formed');
    rejects('<message a/>', 'not-well-formed');
    rejects("<message a='1'b='2'/>", 'not-well-formed');
    rejects("<message a='<'/>", 'not-well-formed');
    // A value opened with ' runs on past a ": it never ends, so the size limit ends it.
    rejects("<message a='1\"/>" + ' '.repeat(300), 'policy-violation', { maxStanzaBytes: 300, maxDepth: 5 });
    rejects("<message a=='1'/>", 'not-well-formed');
    rejects("<message ='1'/>", 'not-well-formed');
  });

  test('names must follow the Name production', () => {
    for (const tag of ['<1a/>', '<-a/>', '<.a/>', '< a/>', '<a\u00d7b/>', '<a\u2000/>', "<a b\u00f7='1'/>", "<a 1b='1'/>", '<\u0300a/>']) {
      rejects(tag, 'not-well-formed');
    }
    accepts("<a\u00b7b c\u0300d='1' é\u203f='2'/>");
  });

  test('text outside a stanza', () => {
    rejects('hello', 'not-well-formed');
    rejects(' <presence/> x', 'not-well-formed');
    rejects('&#32;', 'not-well-formed');
    rejects('<![CDATA[ ]]>', 'not-well-formed');
    assert.equal(errorOf(parse(`x${HEADER}`)), 'not-well-formed');
  });

  test("']]>' in text", () => {
    rejects('<message><body>a]]>b</body></message>', 'not-well-formed');
    rejects('<message><body>]]]]></body></message>', 'not-well-formed');
  });

  test('malformed XML declarations', () => {
    for (const decl of ['<?xml?>', "<?xml version='2.0'?>", "<?xml encoding='UTF-8'?>", "<?xml version='1.0' standalone='maybe'?>", "<?xml version='1.0' encoding='UTF-8' version='1.0'?>", "<?xml standalone='yes' version='1.0'?>", '<?xml version=1.0?>', '<? xml?>']) {
      assert.equal(errorOf(parse(`${decl}${HEADER}`)), 'not-well-formed', decl);
    }
  });

  test('odd markup', () => {
    rejects('<message><body>a<</body></message>', 'not-well-formed');
    rejects('<message/ >', 'not-well-formed');
    rejects('<message></ message>', 'not-well-formed');
    rejects('<message><>', 'not-well-formed');
    rejects("<message a='1' / >", 'not-well-formed');
    assert.equal(errorOf(parse('<')), undefined);
    assert.equal(errorOf(parse('<<')), 'not-well-formed');
  });

  test('an error is reported once and then input is ignored', () => {
    const events = rejects('<message><body></message><presence/><presence/></foo>', 'not-well-formed');
    assert.deepEqual(events.map((e) => e.type), ['start', 'error']);
  });
});

describe('limits', () => {
  const limit = 200;
  const options: ParserOptions = { maxStanzaBytes: limit, maxDepth: 3 };

  test('a stanza of exactly maxStanzaBytes passes; one byte more is a policy violation', () => {
    const open = '<message><body>';
    const close = '</body></message>';
    const exact = open + 'x'.repeat(limit - open.length - close.length) + close;
    assert.equal(Buffer.byteLength(exact), limit);
    accepts(exact, [exact], options);
    rejects(open + 'x'.repeat(limit - open.length - close.length + 1) + close, 'policy-violation', options);
  });

  test('sizes are counted in bytes, not characters', () => {
    const open = '<message><body>';
    const close = '</body></message>';
    const room = limit - open.length - close.length; // even
    accepts(open + 'é'.repeat(room / 2) + close, undefined, options);
    rejects(open + 'é'.repeat(room / 2) + 'x' + close, 'policy-violation', options);
    rejects(open + '😀'.repeat(room / 4 + 1) + close, 'policy-violation', options);
  });

  test('unterminated constructs hit the limit as soon as it is passed, without more input', () => {
    for (const start of ["<message a='", '<message><body>', '<message', '<message ', '<message><![CDATA[', '<message><body>&', '<message><body>&#1', '<message a', '</stream:stream', '<!', '<?']) {
      const fill = start.endsWith('&') ? 'a'.repeat(limit) : start.endsWith('#1') ? '1'.repeat(limit) : start.endsWith('<!') || start.endsWith('<?') ? '' : 'a'.repeat(limit);
      const body = start + fill;
      if (fill === '') continue;
      const events = rejects(body, 'policy-violation', options);
      assert.equal(events.length, 2, start);
    }
    // Whitespace inside a tag, too.
    rejects('<message' + ' '.repeat(limit), 'policy-violation', options);
  });

  test('errors past the limit are reported as the limit', () => {
    rejects('<message><body>' + 'x'.repeat(limit) + '&bad;</body></message>', 'policy-violation', options);
    rejects('<message><body>' + 'x'.repeat(limit) + '\x01</body></message>', 'policy-violation', options);
    rejects(Buffer.concat([Buffer.from('<message><body>' + 'x'.repeat(limit)), Buffer.from([0xff])]), 'policy-violation', options);
    // ...and before it, as themselves.
    rejects('<message><body>&bad;' + 'x'.repeat(limit) + '</body></message>', 'restricted-xml', options);
  });

  test('the stream header is bounded too', () => {
    const header = `<stream:stream xmlns:stream='${NS_STREAM}' pad='${'x'.repeat(limit)}'>`;
    assert.equal(errorOf(parse(header, options)), 'policy-violation');
    assert.equal(errorOf(parse(`<?xml version='1.0'     ${' '.repeat(limit)}?>${HEADER}`, options)), 'policy-violation');
    assert.equal(errorOf(parse(' '.repeat(limit + 1), options)), 'policy-violation');
    assert.equal(errorOf(parse(HEADER, options)), undefined);
  });

  test('whitespace between stanzas is not counted and not kept', () => {
    accepts(' '.repeat(limit * 5) + '<presence/>' + '\n'.repeat(limit * 5), ['<presence/>'], options);
  });

  test('nesting deeper than maxDepth', () => {
    accepts('<a><b><c/></b></a>', undefined, options);
    rejects('<a><b><c><d/></c></b></a>', 'policy-violation', options);
    accepts('<a/><a><b/></a>', undefined, { maxStanzaBytes: limit, maxDepth: 2 });
    rejects('<a><b><c/></b></a>', 'policy-violation', { maxStanzaBytes: limit, maxDepth: 2 });
  });

  test('the limit applies to each stanza separately', () => {
    const stanza = '<message><body>' + 'x'.repeat(150) + '</body></message>';
    accepts(stanza.repeat(20), Array(20).fill(stanza), options);
  });
});

describe('reset', () => {
  function driver(onStanza: (parser: StreamParser, element: XmlElement) => void) {
    const events: string[] = [];
    const parser: StreamParser = new StreamParser(
      {
        streamStart: (name) => events.push(`start ${name}`),
        stanza: (element) => { events.push(`stanza ${element}`); onStanza(parser, element); },
        streamEnd: () => events.push('end'),
        error: (condition) => events.push(`error ${condition}`),
      },
      DEFAULTS,
    );
    return { parser, events };
  }

  test('reset inside a stanza callback discards the rest of the chunk', () => {
    const { parser, events } = driver((p, element) => { if (element.name === 'success') p.reset(); });
    parser.write(Buffer.from(`<?xml version='1.0'?>${HEADER}<auth/><success/><message>ignored</message> junk <!-- also ignored`));
    parser.write(Buffer.from(`<?xml version='1.0'?>${HEADER}<iq/>`));
    assert.deepEqual(events, ['start stream:stream', 'stanza <auth/>', 'stanza <success/>', 'start stream:stream', 'stanza <iq/>']);
  });

  test('reset inside the header callback, with the header split anywhere', () => {
    const input = Buffer.from(`${HEADER}<a/><b/>`);
    for (let cut = 0; cut < HEADER.length; cut++) {
      const events: string[] = [];
      let resets = 0;
      const parser: StreamParser = new StreamParser(
        {
          streamStart: () => { events.push('start'); if (resets++ === 0) parser.reset(); },
          stanza: (element) => events.push(element.name),
          streamEnd: () => events.push('end'),
          error: (condition) => events.push(`error ${condition}`),
        },
        DEFAULTS,
      );
      parser.write(input.subarray(0, cut));
      parser.write(input.subarray(cut)); // completes the header, which resets: <a/><b/> is dropped
      parser.write(input);
      assert.deepEqual(events, ['start', 'start', 'a', 'b'], `cut at ${cut}`);
    }
  });

  test('reset while a multi-byte character is half read', () => {
    const { parser, events } = driver((p) => p.reset());
    const bytes = Buffer.from(`${HEADER}<a/>é`);
    parser.write(bytes.subarray(0, bytes.length - 1)); // ends inside 'é'
    parser.write(Buffer.from(`${HEADER}<b/>`));
    assert.deepEqual(events, ['start stream:stream', 'stanza <a/>', 'start stream:stream', 'stanza <b/>']);
  });

  test('reset after an error, from outside or inside the error callback', () => {
    const events: string[] = [];
    const parser: StreamParser = new StreamParser(
      {
        streamStart: () => events.push('start'),
        stanza: (element) => events.push(element.name),
        streamEnd: () => events.push('end'),
        error: (condition) => { events.push(condition); parser.reset(); },
      },
      DEFAULTS,
    );
    parser.write(Buffer.from(`${HEADER}<a><!-- x --></a>${HEADER}<b/>`));
    parser.write(Buffer.from(`${HEADER}<c/></stream:stream>`));
    assert.deepEqual(events, ['start', 'restricted-xml', 'start', 'c', 'end']);
  });

  test('a reset parser accepts a new XML declaration', () => {
    const { parser, events } = driver((p) => p.reset());
    parser.write(Buffer.from(`<?xml version='1.0'?>${HEADER}<a/>`));
    parser.write(Buffer.from(`<?xml version='1.0'?>${HEADER}`));
    assert.deepEqual(events, ['start stream:stream', 'stanza <a/>', 'start stream:stream']);
  });

  test('a handler that throws stops the parser and the exception propagates', () => {
    const events: string[] = [];
    const parser = new StreamParser(
      {
        streamStart: () => events.push('start'),
        stanza: () => { throw new Error('boom'); },
        streamEnd: () => events.push('end'),
        error: (condition) => events.push(condition),
      },
      DEFAULTS,
    );
    assert.throws(() => parser.write(Buffer.from(`${HEADER}<a/><b/>`)), /boom/);
    parser.write(Buffer.from('</stream:stream>'));
    assert.deepEqual(events, ['start']);
  });
});
