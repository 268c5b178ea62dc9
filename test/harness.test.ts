/**
 * Self-test of the integration harness, and the first end-to-end smoke test of the server:
 * the matcher and the SCRAM client on their own, then real logins and a message over real
 * sockets with the scripted client and with xmpp.js, then the CLI as a child process.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { ScramClient } from './support/sasl-client.ts';
import {
  ScriptedClient, connectXmppJs, matches, parsePattern, startServerProcess, startTestServer, xml,
  type TestServer,
} from './support/index.ts';
import { Element, parse } from 'ltx';

/** A received-like element: parsed under a jabber:client stream root, as the reader does. */
function received(text: string): Element {
  const root = parse(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>${text}</stream:stream>`);
  return root.getChildElements()[0];
}

describe('pattern matching', () => {
  const message = received("<message from='a@x/r' to='b@x' type='chat' id='1'><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>");

  it('matches a subset of attributes and children', () => {
    assert.ok(matches(parsePattern("<message type='chat'/>"), message));
    assert.ok(matches(parsePattern("<message from='a@x/r'><body>hi</body></message>"), message));
    assert.ok(matches(parsePattern("<message xmlns='jabber:client'><active xmlns='http://jabber.org/protocol/chatstates'/></message>"), message));
  });

  it('rejects wrong values, missing attributes, wrong text, wrong namespace', () => {
    assert.ok(!matches(parsePattern("<message type='normal'/>"), message));
    assert.ok(!matches(parsePattern("<message lang='en'/>"), message));
    assert.ok(!matches(parsePattern('<message><body>bye</body></message>'), message));
    assert.ok(!matches(parsePattern("<message><active xmlns='urn:other'/></message>"), message));
    assert.ok(!matches(parsePattern("<message xmlns='jabber:server'/>"), message));
    assert.ok(!matches(parsePattern('<presence/>'), message));
  });

  it('supports {{any}} wildcards', () => {
    assert.ok(matches(parsePattern("<message id='{{any}}' from='a@x/{{any}}'/>"), message));
    assert.ok(!matches(parsePattern("<message from='b@x/{{any}}'/>"), message));
    assert.ok(!matches(parsePattern("<message xml:lang='{{any}}'/>"), message));
  });

  it('keeps child order', () => {
    assert.ok(!matches(parsePattern("<message><active xmlns='http://jabber.org/protocol/chatstates'/><body/></message>"), message));
  });

  it('resolves the stream: prefix', () => {
    const error = received("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    assert.ok(matches(parsePattern("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"), error));
    assert.ok(!matches(parsePattern("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"), error));
  });
});

describe('SCRAM client', () => {
  it('reproduces the RFC 5802 SCRAM-SHA-1 example', () => {
    const scram = new ScramClient({ mechanism: 'SCRAM-SHA-1', username: 'user', password: 'pencil', nonce: 'fyko+d2lbbFgONRv9qkxdawL' });
    assert.equal(scram.first(), 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
    assert.equal(
      scram.final('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'),
      'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
    );
    scram.verify('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
    assert.throws(() => scram.verify('v=AAAApqV8S7suAoZWja4dJRkFsKQ='));
  });

  it('reproduces the RFC 7677 SCRAM-SHA-256 example', () => {
    const scram = new ScramClient({ mechanism: 'SCRAM-SHA-256', username: 'user', password: 'pencil', nonce: 'rOprNGfwEbeRWgbNEkqO' });
    assert.equal(scram.first(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    assert.equal(
      scram.final('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'),
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    );
    scram.verify('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });
});

describe('in-process server', () => {
  let server: TestServer;
  const open: Array<{ close(): Promise<void> } | { stop(): Promise<void> }> = [];

  before(async () => {
    server = await startTestServer();
    await server.addUser('alice', 'alice-secret');
    await server.addUser('bob', 'bob-secret');
  });

  after(async () => {
    for (const c of open) await ('close' in c ? c.close() : c.stop()).catch(() => undefined);
    await server?.stop();
  });

  it('delivers a chat message between two scripted clients (SCRAM-SHA-256 over STARTTLS)', async () => {
    const alice = await ScriptedClient.connect({ port: server.port('starttls'), domain: server.domain, tls: 'starttls', name: 'alice' });
    open.push(alice);
    assert.ok(alice.tlsSocket?.encrypted);
    assert.ok(alice.mechanisms().includes('SCRAM-SHA-256'), `mechanisms offered: ${alice.mechanisms().join(', ')}`);
    await alice.login('alice', 'alice-secret', { mechanism: 'SCRAM-SHA-256' });
    const aliceJid = await alice.bind('desk');
    assert.equal(aliceJid, `alice@${server.domain}/desk`);

    const bob = await server.login('bob', 'bob-secret', { resource: 'phone' });
    open.push(bob);
    assert.equal(bob.jid, `bob@${server.domain}/phone`);

    alice.send(`<message to='${bob.jid}' type='chat' id='m1'><body>Hello Bob</body></message>`);
    const got = await bob.expect(`<message from='${aliceJid}' to='${bob.jid}' type='chat' id='m1'><body>Hello Bob</body></message>`);
    assert.equal(got.attrs.from, aliceJid);
    await alice.expectNothing(200);
  });

  it('logs in over direct TLS with each SCRAM hash and with channel binding', async () => {
    for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-512', 'SCRAM-SHA-256-PLUS'] as const) {
      const c = await server.connect({ listener: 'direct', name: `alice/${mechanism}` });
      open.push(c);
      assert.ok(c.mechanisms().includes(mechanism), `${mechanism} not offered: ${c.mechanisms().join(', ')}`);
      await c.login('alice', 'alice-secret', { mechanism, channelBinding: 'tls-exporter' });
      assert.match(await c.bind(), new RegExp(`^alice@${server.domain}/.+`));
      await c.close();
    }
  });

  it('reports a wrong password as a SASL failure', async () => {
    const c = await server.connect({ name: 'mallory' });
    open.push(c);
    const outcome = await c.authenticate('alice', 'wrong');
    assert.equal(outcome.ok, false);
    assert.equal(!outcome.ok && outcome.condition, 'not-authorized');
    await c.close();
  });

  it('sees a stream error for a bad stream namespace', async () => {
    const c = await ScriptedClient.connect({ port: server.port('starttls'), domain: server.domain, tls: 'none', openStream: false, name: 'bad-ns' });
    open.push(c);
    c.send(`<?xml version='1.0'?><stream:stream to='${server.domain}' version='1.0' xmlns='jabber:client' xmlns:stream='urn:wrong'>`);
    await c.expectStreamError('invalid-namespace');
  });

  it('logs in with xmpp.js and exchanges messages with a scripted client', async () => {
    const bob = await server.login('bob', 'bob-secret', { resource: 'laptop' });
    open.push(bob);
    const alice = await connectXmppJs({ port: server.port('starttls'), domain: server.domain, username: 'alice', password: 'alice-secret', resource: 'xmppjs' });
    open.push(alice);
    assert.equal(alice.jid, `alice@${server.domain}/xmppjs`);
    await alice.send(xml('message', { to: bob.jid, type: 'chat', id: 'x1' }, xml('body', {}, 'from xmpp.js')));
    await bob.expect(`<message from='${alice.jid}' type='chat' id='x1'><body>from xmpp.js</body></message>`);
    bob.send(`<message to='${alice.jid}' type='chat' id='x2'><body>to xmpp.js</body></message>`);
    const reply = await alice.waitFor((s) => s.is('message') && s.attrs.id === 'x2');
    assert.equal(reply.attrs.from, bob.jid);
    assert.equal(reply.getChildText('body'), 'to xmpp.js');
  });

  it('logs in with xmpp.js over direct TLS with PLAIN', async () => {
    const session = await connectXmppJs({ port: server.port('direct'), tls: 'direct', domain: server.domain, username: 'bob', password: 'bob-secret', mechanism: 'PLAIN' });
    open.push(session);
    assert.match(session.jid, new RegExp(`^bob@${server.domain}/.+`));
  });
});

describe('server process', () => {
  it('starts from a config file and shuts down gracefully on SIGTERM', async () => {
    const proc = await startServerProcess({ users: { alice: 'alice-secret' } });
    try {
      const alice = await proc.login('alice', 'alice-secret');
      proc.kill('SIGTERM');
      await alice.expectStreamError('system-shutdown');
      const { code, signal } = await proc.exited;
      assert.equal(signal, null, proc.stderr);
      assert.equal(code, 0, proc.stderr);
    } finally {
      await proc.stop();
    }
  });
});
