/**
 * The c2s stream from the first header to a bound session (RFC 6120 §4, §5, §7; XEP-0368;
 * XEP-0199): STARTTLS and direct TLS, stream header errors, resource binding and conflicts,
 * the legacy session IQ, several domains on one server, the authentication timeout and
 * server pings on idle streams.
 */
import { strict as assert } from 'node:assert';
import { after, afterEach, before, describe, it } from 'node:test';
import { NS_BIND, NS_SASL, NS_STREAM, NS_TLS, ScriptedClient, startTestServer, type TestServer } from '../support/index.ts';

const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** `[[listen.c2s]]` tables on loopback; `extra` is added to each (e.g. timeouts). */
function listeners(modes: string[], extra = ''): string {
  return modes
    .map((mode) => `
      [[listen.c2s]]
      port = 0
      address = "127.0.0.1"
      tls.mode = "${mode}"
      max_connections_per_address = 1000
      ${extra}`)
    .join('\n');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Clients a test opened, closed after it whatever its outcome. */
const clients: ScriptedClient[] = [];
const track = (client: ScriptedClient) => (clients.push(client), client);

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close().catch(() => undefined);
});

describe('stream negotiation', () => {
  let server: TestServer;
  let alice: ScriptedClient;
  let bob: ScriptedClient;

  before(async () => {
    server = await startTestServer({ toml: listeners(['starttls_required', 'direct', 'starttls']) });
    await server.addUser('alice', 'alice-secret');
    await server.addUser('bob', 'bob-secret');
    await server.addUser('carol', 'carol-secret');
    alice = await server.login('alice', 'alice-secret', { resource: 'ward' });
    bob = await server.login('bob', 'bob-secret', { resource: 'pager' });
  });

  after(async () => {
    await alice?.close();
    await bob?.close();
    await server?.stop();
  });

  let round = 0;
  /** The pair set up before the tests still exchanges messages both ways. */
  async function stillChatting(): Promise<void> {
    const n = ++round;
    alice.send(`<message to='bob@localhost/pager' type='chat' id='a${n}'><body>check ${n}</body></message>`);
    await bob.expect(`<message from='alice@localhost/ward' to='bob@localhost/pager' type='chat' id='a${n}'><body>check ${n}</body></message>`, { skip: true });
    bob.send(`<message to='alice@localhost/ward' type='chat' id='b${n}'><body>ack ${n}</body></message>`);
    await alice.expect(`<message from='bob@localhost/pager' to='alice@localhost/ward' type='chat' id='b${n}'><body>ack ${n}</body></message>`, { skip: true });
  }

  /** A TCP connection to a listener, before any XMPP. */
  function raw(listener: 'starttls' | 'direct' | 'starttls-optional' = 'starttls', name = 'raw'): Promise<ScriptedClient> {
    return ScriptedClient.connect({
      port: server.port(listener), domain: 'localhost', tls: listener === 'direct' ? 'direct' : 'none', ca: server.certificate, openStream: false, name,
    }).then(track);
  }

  function header(attrs: Record<string, string>): string {
    return `<?xml version='1.0'?><stream:stream${Object.entries(attrs).map(([k, v]) => ` ${k}='${v}'`).join('')}>`;
  }

  const GOOD_HEADER = { to: 'localhost', version: '1.0', 'xml:lang': 'en', xmlns: 'jabber:client', 'xmlns:stream': NS_STREAM };

  describe('STARTTLS required', () => {
    it('answers the header and offers only <starttls><required/></starttls> before TLS', async () => {
      const client = track(await ScriptedClient.connect({ port: server.port('starttls'), domain: 'localhost', tls: 'none', name: 'cleartext' }));
      const attrs = client.streamAttributes!;
      assert.equal(attrs.from, 'localhost');
      assert.equal(attrs.version, '1.0');
      assert.equal(attrs.xmlns, 'jabber:client');
      assert.equal(attrs['xmlns:stream'], NS_STREAM);
      assert.ok(attrs.id !== undefined && attrs.id.length >= 16, 'a stream id with enough entropy');
      const children = client.features().getChildElements();
      assert.equal(children.length, 1, client.features().toString());
      assert.equal(children[0].getName(), 'starttls');
      assert.equal(children[0].getNS(), NS_TLS);
      assert.ok(children[0].getChild('required'));
    });

    it('closes a stream that sends a stanza before TLS with <not-authorized/>', async () => {
      for (const stanza of [
        "<message to='bob@localhost/pager' type='chat'><body>in the clear</body></message>",
        "<iq type='get' id='v1' to='localhost'><query xmlns='jabber:iq:version'/></iq>",
        `<iq type='set' id='b1'><bind xmlns='${NS_BIND}'/></iq>`,
      ]) {
        const client = track(await ScriptedClient.connect({ port: server.port('starttls'), domain: 'localhost', tls: 'none', name: 'cleartext' }));
        client.send(stanza);
        await client.expectStreamError('not-authorized');
      }
      await bob.expectNothing(100);
      await stillChatting();
    });

    it('offers SASL after the TLS handshake and the restart, and no second STARTTLS', async () => {
      const client = track(await server.connect({ name: 'tls' }));
      assert.ok(client.tlsSocket?.encrypted);
      assert.equal(client.features().getChild('starttls', NS_TLS), undefined);
      assert.ok(client.mechanisms().includes('SCRAM-SHA-256'));
      client.send(`<starttls xmlns='${NS_TLS}'/>`);
      await client.expectStreamError('policy-violation');
    });

    it('discards whatever a client pipelines in cleartext after <starttls/>', async () => {
      const client = track(await raw('starttls', 'pipelining'));
      client.send(header(GOOD_HEADER));
      await client.expect('<stream:features/>');
      // An attacker in the path appends a stanza to the client's <starttls/>.
      client.send(`<starttls xmlns='${NS_TLS}'/><message to='bob@localhost/pager' type='chat' id='injected'><body>injected</body></message>`);
      await client.expect(`<proceed xmlns='${NS_TLS}'/>`);
      await bob.expectNothing(200);
      await stillChatting();
    });
  });

  it('negotiates SASL straight away on the direct TLS listener (XEP-0368)', async () => {
    const client = track(await server.connect({ listener: 'direct', name: 'direct' }));
    assert.ok(client.tlsSocket?.encrypted);
    assert.equal(client.features().getChild('starttls', NS_TLS), undefined);
    assert.ok(client.mechanisms().includes('SCRAM-SHA-512-PLUS'), client.mechanisms().join(', '));
    await client.login('carol', 'carol-secret');
    assert.equal(await client.bind('direct'), 'carol@localhost/direct');
    client.send(`<starttls xmlns='${NS_TLS}'/>`);
    await client.expectStreamError('unsupported-stanza-type');
  });

  it('offers optional STARTTLS with the SASL mechanisms, and upgrades on request', async () => {
    const client = track(await ScriptedClient.connect({ port: server.port('starttls-optional'), domain: 'localhost', tls: 'none', ca: server.certificate, name: 'optional' }));
    const starttls = client.features().getChild('starttls', NS_TLS);
    assert.ok(starttls);
    assert.equal(starttls.getChild('required'), undefined);
    assert.ok(client.features().getChild('mechanisms', NS_SASL));
    await client.startTls();
    await client.login('carol', 'carol-secret', { mechanism: 'SCRAM-SHA-256-PLUS' });
  });

  it('refuses STARTTLS once SASL has begun (TLS comes first, RFC 6120 §5.3.1)', async () => {
    const during = track(await ScriptedClient.connect({ port: server.port('starttls-optional'), domain: 'localhost', tls: 'none', name: 'during-sasl' }));
    during.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-256'>${Buffer.from('n,,n=carol,r=abcdefghijkl').toString('base64')}</auth>`);
    await during.expect(`<challenge xmlns='${NS_SASL}'/>`);
    during.send(`<starttls xmlns='${NS_TLS}'/>`);
    await during.expectStreamError('policy-violation');

    const afterAuth = track(await ScriptedClient.connect({ port: server.port('starttls-optional'), domain: 'localhost', tls: 'none', name: 'after-sasl' }));
    await afterAuth.login('carol', 'carol-secret', { mechanism: 'SCRAM-SHA-1' });
    assert.equal(afterAuth.features().getChild('starttls', NS_TLS), undefined, 'no STARTTLS offered after authentication');
    afterAuth.send(`<starttls xmlns='${NS_TLS}'/>`);
    await afterAuth.expectStreamError('policy-violation');
  });

  describe('stream header errors', () => {
    const cases: Array<[string, Record<string, string | undefined>, string]> = [
      ['a stream element in the wrong namespace', { 'xmlns:stream': 'urn:wrong' }, 'invalid-namespace'],
      ['a default namespace other than jabber:client', { xmlns: 'jabber:server' }, 'invalid-namespace'],
      ['no version attribute', { version: undefined }, 'unsupported-version'],
      ['version 0.9', { version: '0.9' }, 'unsupported-version'],
      ['version 2.0', { version: '2.0' }, 'unsupported-version'],
      ['a domain this server does not serve', { to: 'unknown.example' }, 'host-unknown'],
      ['no to attribute', { to: undefined }, 'host-unknown'],
    ];
    for (const [what, override, condition] of cases) {
      it(`answers ${what} with <${condition}/> inside a stream header of its own`, async () => {
        const client = track(await raw());
        const attrs = Object.fromEntries(Object.entries({ ...GOOD_HEADER, ...override }).filter(([, v]) => v !== undefined)) as Record<string, string>;
        client.send(header(attrs));
        await client.expectStreamError(condition);
        assert.equal(client.streamAttributes?.['xmlns:stream'], NS_STREAM, 'the error came inside a proper stream');
        await stillChatting();
      });
    }

    it('accepts a higher minor version and answers with 1.0 (RFC 6120 §4.7.5)', async () => {
      const client = track(await raw());
      client.send(header({ ...GOOD_HEADER, version: '1.1' }));
      await client.expect(`<stream:features><starttls xmlns='${NS_TLS}'/></stream:features>`);
      assert.equal(client.streamAttributes?.version, '1.0');
    });

    it('is the same for a header error on the direct TLS listener', async () => {
      const client = track(await raw('direct'));
      client.send(header({ ...GOOD_HEADER, to: 'unknown.example' }));
      await client.expectStreamError('host-unknown');
      await stillChatting();
    });

    it('keeps serving another client on the right domain while one names an unknown one', async () => {
      const wrong = track(await raw('starttls', 'wrong-domain'));
      const right = track(await server.connect({ name: 'right-domain' }));
      wrong.send(header({ ...GOOD_HEADER, to: 'unknown.example' }));
      await wrong.expectStreamError('host-unknown');
      await right.login('carol', 'carol-secret');
      await right.bind('after');
      right.send("<message to='alice@localhost/ward' type='chat' id='c1'><body>still here</body></message>");
      await alice.expect("<message from='carol@localhost/after' type='chat' id='c1'><body>still here</body></message>", { skip: true });
    });
  });

  describe('resource binding', () => {
    it('generates a resource when the client asks for none', async () => {
      const client = track(await server.connect());
      await client.login('carol', 'carol-secret');
      const jid = await client.bind();
      assert.match(jid, /^carol@localhost\/[A-Za-z0-9_-]{8,}$/);
      const other = track(await server.login('carol', 'carol-secret'));
      assert.notEqual(other.jid, jid, 'generated resources are unique');
    });

    it("honours the client's resource, as prepared by OpaqueString", async () => {
      const client = track(await server.connect());
      await client.login('carol', 'carol-secret');
      assert.equal(await client.bind('Ward\u00a07 Tablet'), 'carol@localhost/Ward 7 Tablet');
      bob.send("<message to='carol@localhost/Ward 7 Tablet' type='chat' id='r1'><body>found you</body></message>");
      await client.expect("<message from='bob@localhost/pager' to='carol@localhost/Ward 7 Tablet' id='r1'/>");
    });

    it('refuses a resource OpaqueString rejects with <bad-request/>, and the client may try again', async () => {
      const client = track(await server.connect());
      await client.login('carol', 'carol-secret');
      client.send(`<iq type='set' id='bad'><bind xmlns='${NS_BIND}'><resource>zero\u200bwidth</resource></bind></iq>`);
      await client.expect(`<iq type='error' id='bad'><error type='modify'><bad-request xmlns='${NS_STANZAS}'/></error></iq>`);
      assert.equal(await client.bind('fine'), 'carol@localhost/fine');
    });

    it('replaces a session bound to the same full JID: the old one gets <conflict/>, the new one works', async () => {
      const first = track(await server.login('carol', 'carol-secret', { resource: 'phone', name: 'carol/first' }));
      const second = track(await server.login('carol', 'carol-secret', { resource: 'phone', name: 'carol/second' }));
      await first.expectStreamError('conflict');
      bob.send("<message to='carol@localhost/phone' type='chat' id='c2'><body>which one?</body></message>");
      await second.expect("<message from='bob@localhost/pager' to='carol@localhost/phone' id='c2'><body>which one?</body></message>");
      second.send("<message to='bob@localhost/pager' type='chat' id='c3'><body>the new one</body></message>");
      await bob.expect("<message from='carol@localhost/phone' id='c3'/>", { skip: true });
    });

    it('refuses to bind before authentication', async () => {
      const client = track(await server.connect());
      client.send(`<iq type='set' id='early'><bind xmlns='${NS_BIND}'><resource>early</resource></bind></iq>`);
      await client.expectStreamError('not-authorized');
      await stillChatting();
    });

    it('refuses any other stanza between authentication and bind', async () => {
      const client = track(await server.connect());
      await client.login('carol', 'carol-secret');
      const reply = await client.iq("<iq type='get' id='roster' ><query xmlns='jabber:iq:roster'/></iq>");
      assert.equal(reply.attrs.type, 'error');
      assert.equal(await client.bind('late'), 'carol@localhost/late');
    });

    it('advertises the RFC 3921 session IQ as optional, and accepts it', async () => {
      const client = track(await server.connect());
      await client.login('carol', 'carol-secret');
      const features = client.features();
      assert.ok(features.getChild('bind', NS_BIND));
      assert.ok(features.getChild('session', NS_SESSION)?.getChild('optional'), features.toString());
      assert.equal(features.getChild('mechanisms', NS_SASL), undefined);
      await client.bind('legacy');
      const result = await client.iq(`<iq type='set' id='sess'><session xmlns='${NS_SESSION}'/></iq>`);
      assert.equal(result.attrs.type, 'result');
    });
  });
});

describe('two domains on one server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ hosts: ['a.test', 'b.test'], toml: listeners(['starttls_required', 'direct']) });
    await server.addUser('alice@a.test', 'alice-secret');
    await server.addUser('bob@b.test', 'bob-secret');
  });
  after(() => server?.stop());

  it('logs each user into their own domain and carries a message across', async () => {
    const alice = track(await server.login('alice@a.test', 'alice-secret', { resource: 'a' }));
    const bob = track(await server.login('bob@b.test', 'bob-secret', { resource: 'b', listener: 'direct' }));
    assert.equal(alice.streamAttributes?.from, 'a.test');
    assert.equal(bob.streamAttributes?.from, 'b.test');
    assert.equal(alice.jid, 'alice@a.test/a');
    assert.equal(bob.jid, 'bob@b.test/b');
    alice.send("<message to='bob@b.test/b' type='chat' id='x1'><body>across</body></message>");
    await bob.expect("<message from='alice@a.test/a' to='bob@b.test/b' type='chat' id='x1'><body>across</body></message>");
    bob.send("<message to='alice@a.test/a' type='chat' id='x2'><body>and back</body></message>");
    await alice.expect("<message from='bob@b.test/b' to='alice@a.test/a' type='chat' id='x2'><body>and back</body></message>");
  });

  it('does not authenticate a user of one domain on the other', async () => {
    const client = track(await server.connect({ domain: 'b.test' }));
    const outcome = await client.authenticate('alice', 'alice-secret');
    assert.equal(outcome.ok ? 'ok' : outcome.condition, 'not-authorized');
  });
});

describe('authentication timeout', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ toml: listeners(['starttls_required'], 'auth_timeout = 1') });
    await server.addUser('alice', 'alice-secret');
  });
  after(() => server?.stop());

  it('closes a stream that never authenticates with <connection-timeout/>', async () => {
    const started = performance.now();
    const client = track(await server.connect());
    await client.expectStreamError('connection-timeout', { timeout: 3000 });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 900, `closed after ${Math.round(elapsed)} ms, not before auth_timeout`);
  });

  it('closes a stream that authenticated but never bound a resource', async () => {
    const client = track(await server.connect());
    await client.login('alice', 'alice-secret');
    await client.expectStreamError('connection-timeout', { timeout: 3000 });
  });

  it('leaves a bound session alone once the timeout has passed', async () => {
    const client = track(await server.login('alice', 'alice-secret', { resource: 'bound' }));
    await sleep(1500);
    const reply = await client.iq("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    assert.equal(reply.attrs.type, 'result');
  });
});

describe('server pings on idle streams', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ toml: listeners(['starttls_required'], 'idle_timeout = 1\n      ping_timeout = 1') });
    await server.addUser('alice', 'alice-secret');
  });
  after(() => server?.stop());

  const PING = "<iq type='get' from='localhost' to='alice@localhost/{{any}}' id='{{any}}'><ping xmlns='urn:xmpp:ping'/></iq>";

  it('pings an idle bound stream and closes it with <connection-timeout/> when no answer comes', async () => {
    const client = track(await server.login('alice', 'alice-secret', { resource: 'silent' }));
    const ping = await client.expect(PING, { timeout: 3000 });
    assert.equal(ping.attrs.to, 'alice@localhost/silent');
    const pinged = performance.now();
    await client.expectStreamError('connection-timeout', { timeout: 3000 });
    const waited = performance.now() - pinged;
    assert.ok(waited >= 900, `closed ${Math.round(waited)} ms after the ping, before ping_timeout`);
  });

  it('keeps a stream that answers its pings open', async () => {
    const client = track(await server.login('alice', 'alice-secret', { resource: 'awake' }));
    for (let i = 0; i < 3; i++) {
      const ping = await client.expect(PING, { timeout: 3000 });
      client.send(`<iq type='result' id='${ping.attrs.id}'${i === 0 ? " to='localhost'" : ''}/>`);
    }
    const reply = await client.iq("<iq type='set' id='s2'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    assert.equal(reply.attrs.type, 'result');
  });

  it('does not ping a stream that keeps talking', async () => {
    const client = track(await server.login('alice', 'alice-secret', { resource: 'chatty' }));
    for (let i = 0; i < 6; i++) {
      await sleep(400);
      client.send(' '); // whitespace keepalive (RFC 6120 §4.6.1)
    }
    await client.expectNothing(100);
  });
});
