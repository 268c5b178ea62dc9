/**
 * Hostile and broken input: each case gets its precise error, and a pair of clients that
 * were already chatting keep chatting as if nothing happened.
 */
import { strict as assert } from 'node:assert';
import net from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ScriptedClient, startTestServer, type TestServer } from '../support/index.ts';

const MAX_STANZA = 16 * 1024;

describe('bad input never disturbs other clients', () => {
  let server: TestServer;
  let alice: ScriptedClient;
  let bob: ScriptedClient;

  before(async () => {
    server = await startTestServer({
      listeners: ['starttls', 'plain'],
      toml: `
        [general]
        max_stanza_size = ${MAX_STANZA}
        max_xml_depth = 16
        [[listen.c2s]]
        port = 0
        address = "127.0.0.1"
        max_connections_per_address = 1000
        [[listen.c2s]]
        port = 0
        address = "127.0.0.1"
        tls.mode = "none"
        max_connections_per_address = 1000
        [auth]
        plain_without_tls = true
      `,
    });
    await server.addUser('alice', 'alice-password');
    await server.addUser('bob', 'bob-password');
    await server.addUser('mallory', 'mallory-password');
    alice = await server.login('alice', 'alice-password', { resource: 'ward' });
    bob = await server.login('bob', 'bob-password', { resource: 'pager' });
    alice.send('<presence/>');
    bob.send('<presence/>');
    // Each gets its own presence back (RFC 6121 §4.2.2); after that the streams are quiet.
    await alice.expect("<presence from='alice@localhost/ward'/>", { skip: true });
    await bob.expect("<presence from='bob@localhost/pager'/>", { skip: true });
  });

  after(() => server.stop());

  beforeEach(() => {
    alice.clear();
    bob.clear();
  });

  let counter = 0;
  /** Alice and Bob still exchange messages both ways, in order. */
  async function stillChatting(): Promise<void> {
    const n = ++counter;
    alice.send(`<message to='bob@localhost/pager' type='chat' id='a${n}'><body>check ${n}</body></message>`);
    await bob.expect(`<message from='alice@localhost/ward' type='chat' id='a${n}'><body>check ${n}</body></message>`, { skip: true });
    bob.send(`<message to='alice@localhost/ward' type='chat' id='b${n}'><body>ack ${n}</body></message>`);
    await alice.expect(`<message from='bob@localhost/pager' type='chat' id='b${n}'><body>ack ${n}</body></message>`, { skip: true });
  }

  it('closes a stream with malformed XML with <not-well-formed/>', async () => {
    const mallory = await server.login('mallory', 'mallory-password');
    mallory.send("<message to='bob@localhost/pager'><body>hi</message>");
    await mallory.expectStreamError('not-well-formed');
    await bob.expectNothing(100);
    await stillChatting();
  });

  it('rejects invalid UTF-8 with <not-well-formed/>', async () => {
    const mallory = await server.login('mallory', 'mallory-password');
    mallory.sendRaw(Buffer.concat([Buffer.from("<message to='bob@localhost/pager'><body>"), Buffer.from([0xc3, 0x28]), Buffer.from('</body></message>')]));
    await mallory.expectStreamError('not-well-formed');
    await bob.expectNothing(100);
    await stillChatting();
  });

  it('rejects a DOCTYPE with <restricted-xml/> before authentication', async () => {
    const mallory = await server.connect({ listener: 'plain', openStream: false });
    mallory.sendRaw("<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    await mallory.expectStreamError('restricted-xml');
    await stillChatting();
  });

  it('rejects billion-laughs entities inside a stream, with memory flat', async () => {
    const laughs = billionLaughs();
    const before = process.memoryUsage().rss;
    const attackers = await Promise.all(Array.from({ length: 20 }, () => server.login('mallory', 'mallory-password', { listener: 'plain', mechanism: 'PLAIN', resource: `r${Math.random()}` })));
    for (const mallory of attackers) mallory.sendRaw(laughs);
    for (const mallory of attackers) await mallory.expectStreamError('restricted-xml');
    const grown = process.memoryUsage().rss - before;
    // Expanded, each payload would be 3 GB; parsed lazily it costs nothing measurable.
    assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${Math.round(grown / 1024 / 1024)} MiB`);
    await stillChatting();
  });

  it('rejects an undeclared entity reference with <restricted-xml/>', async () => {
    const mallory = await server.login('mallory', 'mallory-password');
    mallory.send("<message to='bob@localhost/pager'><body>&lol9;</body></message>");
    await mallory.expectStreamError('restricted-xml');
    await bob.expectNothing(100);
    await stillChatting();
  });

  it('rejects comments and processing instructions with <restricted-xml/>', async () => {
    for (const payload of ['<!-- hello -->', "<?php echo 1; ?>"]) {
      const mallory = await server.login('mallory', 'mallory-password');
      mallory.send(`<message to='bob@localhost/pager'><body>x</body>${payload}</message>`);
      await mallory.expectStreamError('restricted-xml');
    }
    await bob.expectNothing(100);
    await stillChatting();
  });

  it('closes a stream that sends an oversized stanza with <policy-violation/>', async () => {
    const mallory = await server.login('mallory', 'mallory-password');
    mallory.send(`<message to='bob@localhost/pager' type='chat'><body>${'x'.repeat(MAX_STANZA)}</body></message>`);
    await mallory.expectStreamError('policy-violation');
    await bob.expectNothing(100);
    await stillChatting();
  });

  it('cuts off an endless stanza as soon as it passes the limit', async () => {
    const mallory = await server.login('mallory', 'mallory-password');
    mallory.send("<message to='bob@localhost/pager'><body>");
    // Never finished: the limit must trigger on the running size, not at the end tag.
    for (let i = 0; i < 8; i++) mallory.send('y'.repeat(4096));
    await mallory.expectStreamError('policy-violation');
    await stillChatting();
  });

  it('closes a stream nested too deep with <policy-violation/>', async () => {
    const mallory = await server.login('mallory', 'mallory-password');
    mallory.send(`<message to='bob@localhost/pager'>${'<a>'.repeat(40)}${'</a>'.repeat(40)}</message>`);
    await mallory.expectStreamError('policy-violation');
    await stillChatting();
  });

  it('stamps the authenticated address over a spoofed from', async () => {
    const mallory = await server.login('mallory', 'mallory-password', { resource: 'laptop' });
    mallory.send("<message from='alice@localhost/ward' to='bob@localhost/pager' type='chat' id='spoof'><body>it is alice</body></message>");
    const received = await bob.expect("<message to='bob@localhost/pager' type='chat' id='spoof'/>");
    assert.equal(received.attrs.from, 'mallory@localhost/laptop');
    await alice.expectNothing(100);
    await mallory.close();
    await stillChatting();
  });

  it('refuses stanzas before authentication with <not-authorized/>', async () => {
    const mallory = await server.connect();
    mallory.send("<message to='bob@localhost/pager' type='chat'><body>unauthenticated</body></message>");
    await mallory.expectStreamError('not-authorized');
    await bob.expectNothing(150);
    await stillChatting();
  });

  it('refuses stanzas before resource binding with <not-authorized/>', async () => {
    const mallory = await server.connect();
    await mallory.login('mallory', 'mallory-password');
    mallory.send("<message to='bob@localhost/pager' type='chat'><body>unbound</body></message>");
    await mallory.expectStreamError('not-authorized');
    await bob.expectNothing(150);
    await stillChatting();
  });

  it('answers a stream to an unknown domain with <host-unknown/>', async () => {
    const mallory = await server.connect({ listener: 'plain', openStream: false, domain: 'unknown.example' });
    mallory.sendRaw("<?xml version='1.0'?><stream:stream to='unknown.example' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    await mallory.expectStreamError('host-unknown');
    await stillChatting();
  });

  it('answers a message to an unknown domain with <remote-server-not-found/>, keeping the stream', async () => {
    const mallory = await server.login('mallory', 'mallory-password');
    mallory.send("<message to='bob@unknown.example' type='chat' id='far'><body>hello?</body></message>");
    await mallory.expect("<message type='error' id='far' from='bob@unknown.example'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    await mallory.close();
    await stillChatting();
  });

  it('answers an unsupported SASL mechanism with <invalid-mechanism/>', async () => {
    const mallory = await server.connect();
    mallory.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>");
    await mallory.expect("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism/></failure>");
    // The stream is still usable: a supported mechanism works afterwards.
    await mallory.login('mallory', 'mallory-password');
    await mallory.bind();
    await mallory.close();
    await stillChatting();
  });

  it('survives 200 connections opened and dropped at once', async () => {
    const baseline = server.server.connections();
    const port = server.port('plain');
    const sockets = await Promise.all(Array.from({ length: 200 }, (_, i) => new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        // Some drop before saying anything, some mid-header, some after a full header.
        if (i % 3 === 1) socket.write("<?xml version='1.0'?><stream:stream to='localhost'");
        if (i % 3 === 2) socket.write("<stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
        resolve(socket);
      });
      socket.on('error', reject);
    })));
    await stillChatting();
    for (const socket of sockets) socket.destroy();
    await waitFor(() => server.server.connections() === baseline, 5000);
    assert.equal(server.server.connections(), baseline);
    await stillChatting();
  });

  it('refuses connections over the per-address limit with <policy-violation/>', async () => {
    const limited = await startTestServer({
      listeners: ['plain'],
      toml: `
        [[listen.c2s]]
        port = 0
        address = "127.0.0.1"
        tls.mode = "none"
        max_connections_per_address = 3
      `,
    });
    try {
      const held = await Promise.all([0, 1, 2].map(() => limited.connect({ openStream: false })));
      const refused = await limited.connect({ openStream: false });
      await refused.expectStreamError('policy-violation');
      held[0].destroy();
      await waitFor(() => limited.server.connections() === 2, 2000);
      const admitted = await limited.connect();
      assert.ok(admitted.mechanisms().length > 0);
    } finally {
      await limited.stop();
    }
  });
});

describe('connection accounting', () => {
  it('frees a STARTTLS connection\'s place when it closes, however it closes', async () => {
    const limited = await startTestServer({
      listeners: ['starttls'],
      toml: `
        [[listen.c2s]]
        port = 0
        address = "127.0.0.1"
        tls.mode = "starttls_required"
        max_connections_per_address = 2
      `,
    });
    try {
      await limited.addUser('alice', 'alice-password');
      // Clean close after login, abrupt close after TLS, close before TLS: none may stay counted.
      for (let round = 0; round < 3; round++) {
        const clean = await limited.login('alice', 'alice-password', { resource: `r${round}` });
        await clean.close();
        const abrupt = await limited.connect(); // STARTTLS done, not authenticated
        abrupt.destroy();
        const early = await limited.connect({ openStream: false });
        early.destroy();
        await waitFor(() => limited.server.connections() === 0, 2000);
        assert.equal(limited.server.connections(), 0, `round ${round}`);
      }
      const admitted = await limited.connect();
      assert.ok(admitted.mechanisms().length > 0);
    } finally {
      await limited.stop();
    }
  });
});

/** The classic exponential-entity document, as a stanza inside an open stream. */
function billionLaughs(): string {
  let entities = "<!ENTITY lol0 'lol'>";
  for (let i = 1; i <= 9; i++) entities += `<!ENTITY lol${i} '${`&lol${i - 1};`.repeat(10)}'>`;
  return `<!DOCTYPE message [${entities}]><message to='bob@localhost'><body>&lol9;</body></message>`;
}

async function waitFor(condition: () => boolean, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}
