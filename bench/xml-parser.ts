/**
 * Throughput of the stream tokenizer (src/xml/parser.ts) against ltx's streaming SAX parser
 * (the one xmpp.js uses), on the same realistic streams, both building element trees and
 * emitting each top-level element.
 *
 *   node --import tsx bench/xml-parser.ts [seconds-per-case]
 *
 * Two feeds: "bulk" writes 64 KB chunks (a busy socket), "per-stanza" one write per stanza
 * (interactive traffic, where per-write overhead shows). ltx gets strings through a
 * StringDecoder, as it needs them; the UTF-8 decoding is part of its cost as it is of ours.
 */
import { StringDecoder } from 'node:string_decoder';
import { Element } from 'ltx';
import SaxLtx from 'ltx/src/parsers/ltx.js';
import { StreamParser } from '../src/xml/parser.ts';

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

function chat(i: number): string {
  return `<message to='juliet@example.com/balcony' from='romeo@example.net/orchard' type='chat' id='msg-${i}' xml:lang='en'>` +
    `<body>Neither, fair saint, if either thee dislike. &lt;3 #${i}</body>` +
    "<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/>" +
    `<stanza-id xmlns='urn:xmpp:sid:0' id='5f3a-${i}' by='romeo@example.net'/></message>`;
}

function presence(i: number): string {
  return `<presence from='romeo@example.net/orchard-${i}' id='p${i}'><show>away</show><status>Out in the orchard, back soon — ☀️</status>` +
    '<priority>5</priority>' +
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>" +
    "<x xmlns='vcard-temp:x:update'><photo>01b87fcd030b72895ff8e88db57ec525450f000d</photo></x>" +
    `<delay xmlns='urn:xmpp:delay' from='example.net' stamp='2024-06-11T12:00:${String(i % 60).padStart(2, '0')}Z'/></presence>`;
}

const PARAGRAPH = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore &amp; dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation — “ullamco” laboris nisi ut aliquip ex ea commodo consequat. ";

function large(i: number): string {
  let body = '';
  while (body.length < 10_000) body += PARAGRAPH;
  return `<message to='ward7@muc.hospital.example' from='dr.jones@hospital.example/pager' type='groupchat' id='big-${i}'>` +
    `<body>${body}</body><markable xmlns='urn:xmpp:chat-markers:0'/></message>`;
}

function attributes(i: number): string {
  let items = '';
  for (let k = 0; k < 8; k++) {
    items += `<item jid='contact${k}@hospital.example' name='Contact Number ${k}' subscription='both' ask='subscribe' approved='true'>` +
      `<group>Ward ${k % 3}</group></item>`;
  }
  return `<iq type='set' id='push-${i}' to='nurse@hospital.example/phone' from='nurse@hospital.example'>` +
    `<query xmlns='jabber:iq:roster' ver='ver${i}'>${items}</query></iq>`;
}

const WORKLOADS: [string, (i: number) => string][] = [
  ['chat message', chat],
  ['presence + caps', presence],
  ['10 KB message', large],
  ['many attributes', attributes],
];

interface Case {
  /** The stream after the header, cut into the writes one pass makes. */
  writes: Buffer[];
  stanzas: number;
  bytes: number;
}

function makeCase(make: (i: number) => string, mode: 'bulk' | 'per-stanza'): Case {
  const stanzas: Buffer[] = [];
  let bytes = 0;
  for (let i = 0; bytes < 1_000_000; i++) {
    const b = Buffer.from(make(i));
    stanzas.push(b);
    bytes += b.length;
  }
  if (mode === 'per-stanza') return { writes: stanzas, stanzas: stanzas.length, bytes };
  const all = Buffer.concat(stanzas);
  const writes: Buffer[] = [];
  for (let at = 0; at < all.length; at += 65536) writes.push(all.subarray(at, at + 65536));
  return { writes, stanzas: stanzas.length, bytes };
}

interface Runner {
  /** Parse one pass of the case on a fresh stream; returns the number of stanzas seen. */
  pass(c: Case): number;
}

const ours: Runner = {
  pass(c) {
    let count = 0;
    const parser = new StreamParser(
      {
        streamStart: () => undefined,
        stanza: () => { count++; },
        streamEnd: () => undefined,
        error: (condition, text) => { throw new Error(`${condition}: ${text}`); },
      },
      { maxStanzaBytes: 1 << 20, maxDepth: 64 },
    );
    parser.write(Buffer.from(HEADER));
    for (const w of c.writes) parser.write(w);
    return count;
  },
};

/** ltx's SAX parser building ltx Elements and emitting top-level ones, as @xmpp/xml does. */
const ltx: Runner = {
  pass(c) {
    let count = 0;
    const decoder = new StringDecoder('utf8');
    const sax = new SaxLtx();
    let root: Element | undefined;
    let cursor: Element | undefined;
    sax.on('startElement', (name, attrs) => {
      const element = new Element(name, attrs);
      if (root === undefined) root = element;
      else if (cursor !== root && cursor !== undefined) cursor.cnode(element);
      cursor = element;
    });
    sax.on('endElement', () => {
      if (cursor === undefined || cursor === root) return;
      if (cursor.parent === null) {
        count++;
        cursor = root;
      } else {
        cursor = cursor.parent;
      }
    });
    sax.on('text', (text) => { cursor?.t(text); });
    sax.on('error', (err) => { throw err; });
    sax.write(decoder.write(Buffer.from(HEADER)));
    for (const w of c.writes) sax.write(decoder.write(w));
    return count;
  },
};

interface Rate {
  stanzasPerSec: number;
  mbPerSec: number;
}

/**
 * Alternate passes of the two runners for the given time and keep each one's best pass, so
 * that both see the same machine (other load on a shared box hits both alike).
 */
function measure(runners: Runner[], c: Case, seconds: number): Rate[] {
  for (const runner of runners) {
    // Warm up, and check that the runner sees every stanza.
    for (let k = 0; k < 3; k++) {
      const seen = runner.pass(c);
      if (seen !== c.stanzas) throw new Error(`saw ${seen} stanzas, expected ${c.stanzas}`);
    }
  }
  const best = runners.map(() => Infinity);
  const deadline = performance.now() + seconds * 1000;
  do {
    runners.forEach((runner, k) => {
      const t0 = performance.now();
      runner.pass(c);
      best[k] = Math.min(best[k], performance.now() - t0);
    });
  } while (performance.now() < deadline);
  return best.map((ms) => ({ stanzasPerSec: (c.stanzas / ms) * 1000, mbPerSec: c.bytes / 1e6 / (ms / 1000) }));
}

const seconds = Number(process.argv[2] ?? 2);
const only = process.argv[3];
const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

console.log(`node ${process.version}, ${process.platform}/${process.arch}; best pass of each, alternating, over ${seconds}s per case (~1 MB per pass)\n`);
console.log('| workload | feed | stanza size | Meerkat stanzas/s | Meerkat MB/s | ltx stanzas/s | ltx MB/s | Meerkat / ltx |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const [name, make] of WORKLOADS) {
  if (only !== undefined && !name.includes(only)) continue;
  for (const mode of ['bulk', 'per-stanza'] as const) {
    const c = makeCase(make, mode);
    const [a, b] = measure([ours, ltx], c, seconds);
    console.log(
      `| ${name} | ${mode} | ${fmt(c.bytes / c.stanzas)} B | ${fmt(a.stanzasPerSec)} | ${fmt(a.mbPerSec, 1)} | ${fmt(b.stanzasPerSec)} | ${fmt(b.mbPerSec, 1)} | ${fmt(a.mbPerSec / b.mbPerSec, 2)}× |`,
    );
  }
}
