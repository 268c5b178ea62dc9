/**
 * @xmpp/client 0.14, a client nobody here wrote, against the server: STARTTLS and direct
 * TLS, each SASL mechanism it implements (SCRAM-SHA-1 and PLAIN), messages both ways with a
 * scripted client, an IQ ping to the server, and the server's own pings on an idle stream.
 */
import { strict as assert } from 'node:assert';
import { after, afterEach, before, describe, it } from 'node:test';
import { connectXmppJs, startTestServer, xml, type ScriptedClient, type TestServer, type XmppJsSession } from '../support/index.ts';

const NS_PING = 'urn:xmpp:ping';

describe('@xmpp/client against the server', () => {
  let server: TestServer;
  let bob: ScriptedClient;
  const sessions: XmppJsSession[] = [];

  before(async () => {
    server = await startTestServer({ listeners: ['starttls', 'direct'] });
    await server.addUser('alice', 'alice-secret');
    await server.addUser('bob', 'bob-secret');
    bob = await server.login('bob', 'bob-secret', { resource: 'desk' });
  });

  after(async () => {
    await bob?.close();
    await server?.stop();
  });

  afterEach(async () => {
    for (const session of sessions.splice(0)) await session.stop().catch(() => undefined);
  });

  let round = 0;
  /** A message from xmpp.js to the scripted Bob and his answer back. */
  async function exchange(alice: XmppJsSession): Promise<void> {
    const n = ++round;
    await alice.send(xml('message', { to: 'bob@localhost/desk', type: 'chat', id: `to-bob-${n}` }, xml('body', {}, `hello bob ${n}`)));
    await bob.expect(`<message from='${alice.jid}' to='bob@localhost/desk' type='chat' id='to-bob-${n}'><body>hello bob ${n}</body></message>`, { skip: true });
    bob.send(`<message to='${alice.jid}' type='chat' id='to-alice-${n}'><body>hello alice ${n}</body></message>`);
    const reply = await alice.waitFor((s) => s.is('message') && s.attrs.id === `to-alice-${n}`);
    assert.equal(reply.attrs.from, 'bob@localhost/desk');
    assert.equal(reply.attrs.to, alice.jid);
    assert.equal(reply.getChildText('body'), `hello alice ${n}`);
  }

  const variants = [
    { tls: 'starttls', mechanism: 'SCRAM-SHA-1' },
    { tls: 'starttls', mechanism: 'PLAIN' },
    { tls: 'direct', mechanism: 'SCRAM-SHA-1' },
    { tls: 'direct', mechanism: 'PLAIN' },
  ] as const;

  for (const { tls, mechanism } of variants) {
    it(`logs in over ${tls === 'direct' ? 'direct TLS' : 'STARTTLS'} with ${mechanism}, chats with a scripted client and pings the server`, async () => {
      const alice = await connectXmppJs({
        port: server.port(tls), tls, domain: 'localhost', username: 'alice', password: 'alice-secret', mechanism, resource: `xmppjs-${tls}-${mechanism}`,
      });
      sessions.push(alice);
      assert.equal(alice.jid, `alice@localhost/xmppjs-${tls}-${mechanism}`);
      assert.ok(alice.xmpp.isSecure(), 'the stream is encrypted');
      await exchange(alice);

      const pong = await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS_PING })));
      assert.equal(pong.attrs.type, 'result');
      assert.equal(pong.attrs.from, 'localhost');
      assert.deepEqual(alice.errors, []);
    });
  }

  it('picks SCRAM-SHA-1 by itself and gets a server-generated resource when it asks for none', async () => {
    const alice = await connectXmppJs({ port: server.port('starttls'), domain: 'localhost', username: 'alice', password: 'alice-secret' });
    sessions.push(alice);
    assert.match(alice.jid, /^alice@localhost\/.+$/);
    await exchange(alice);
  });

  it('reports a wrong password as a SASL failure', async () => {
    await assert.rejects(
      connectXmppJs({ port: server.port('starttls'), domain: 'localhost', username: 'alice', password: 'not-her-password', mechanism: 'SCRAM-SHA-1' }),
      (err: Error & { condition?: string }) => err.condition === 'not-authorized',
    );
  });
});

describe('@xmpp/client and server pings', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      toml: `
        [[listen.c2s]]
        port = 0
        address = "127.0.0.1"
        tls.mode = "starttls_required"
        idle_timeout = 1
        ping_timeout = 1
      `,
    });
    await server.addUser('alice', 'alice-secret');
  });
  after(() => server?.stop());

  it('stays connected through idle periods by answering the server pings', async () => {
    const alice = await connectXmppJs({ port: server.port('starttls'), domain: 'localhost', username: 'alice', password: 'alice-secret', resource: 'idle' });
    try {
      // At least two idle periods: the server pings, xmpp.js answers (even if with an error).
      await alice.waitFor((s) => s.is('iq') && s.attrs.type === 'get' && s.getChild('ping', NS_PING) !== undefined, { timeout: 3000 });
      await new Promise((resolve) => setTimeout(resolve, 2500));
      assert.equal(alice.xmpp.status, 'online');
      const pong = await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS_PING })));
      assert.equal(pong.attrs.type, 'result');
    } finally {
      await alice.stop();
    }
  });
});
