/**
 * SASL authentication over real sockets (RFC 6120 §6, RFC 5802, RFC 7677, RFC 4616): every
 * mechanism and channel binding, retries and their limits, failure throttling, the
 * downgrade and tampering checks of SCRAM, authorization identities, abort, username
 * normalisation, and an identity that cannot change once authenticated.
 */
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Element } from 'ltx';
import { generate } from 'selfsigned';
import { ScramClient, type ScramOptions } from '../support/sasl-client.ts';
import { NS_SASL, ScriptedClient, startTestServer, type SaslMechanism, type TestServer } from '../support/index.ts';

const SCRAM = ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
const SCRAM_PLUS = ['SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-512-PLUS'] as const;
const BINDINGS = ['tls-exporter', 'tls-server-end-point'] as const;

/** `[[listen.c2s]]` tables on loopback that let a test open many connections. */
function listeners(...modes: string[]): string {
  return modes
    .map((mode) => `
      [[listen.c2s]]
      port = 0
      address = "127.0.0.1"
      tls.mode = "${mode}"
      max_connections_per_address = 1000`)
    .join('\n');
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (element: Element) => Buffer.from(element.getText().trim(), 'base64').toString('utf8');

/** The defined condition of a SASL <failure/>. */
function conditionOf(failure: Element): string | undefined {
  return failure.getChildElements().find((child) => child.getName() !== 'text')?.getName();
}

/**
 * A SCRAM exchange driven by a ScramClient the test built itself (for channel-binding data
 * that does not come from the real connection). Returns <success/> or <failure/>.
 */
async function scramExchange(
  client: ScriptedClient,
  mechanism: ScramOptions['mechanism'],
  options: Omit<ScramOptions, 'mechanism'>,
): Promise<{ challenged: boolean; outcome: Element }> {
  const scram = new ScramClient({ ...options, mechanism });
  client.send(`<auth xmlns='${NS_SASL}' mechanism='${mechanism}'>${b64(scram.first())}</auth>`);
  const challenge = await client.next();
  if (challenge.getName() !== 'challenge') return { challenged: false, outcome: challenge };
  client.send(`<response xmlns='${NS_SASL}'>${b64(scram.final(unb64(challenge)))}</response>`);
  return { challenged: true, outcome: await client.next() };
}

/** A stand-in for the client's TLS socket that yields channel-binding data of another connection. */
function forgedSocket(real: TLSSocket, forged: { exporter?: Buffer; certificate?: X509Certificate }): TLSSocket {
  return {
    exportKeyingMaterial: (length: number, label: string, context: Buffer) => forged.exporter ?? real.exportKeyingMaterial(length, label, context),
    getPeerX509Certificate: () => forged.certificate ?? real.getPeerX509Certificate(),
    getFinished: () => real.getFinished(),
  } as unknown as TLSSocket;
}

/** Clients a test opened, closed after it whatever its outcome (a server stops only once they are gone). */
const clients: ScriptedClient[] = [];
const track = (client: ScriptedClient) => (clients.push(client), client);

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close().catch(() => undefined);
});

describe('SASL mechanisms', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      hosts: ['localhost', 'other.test'],
      toml: `${listeners('starttls_required', 'direct', 'none', 'starttls')}
        [auth]
        max_attempts = 3
        failures_per_address = 1000
        failures_per_account = 1000
      `,
    });
    await server.addUser('alice', 'alice-secret');
    await server.addUser('bob', 'bob-secret');
    await server.addUser('carol@other.test', 'carol-secret');
  });

  after(() => server?.stop());

  it('offers every SCRAM mechanism, their -PLUS variants and PLAIN after TLS, with the channel-binding types', async () => {
    for (const listener of ['starttls', 'direct'] as const) {
      const client = track(await server.connect({ listener }));
      assert.equal(client.tlsSocket?.getProtocol(), 'TLSv1.3');
      const offered = client.mechanisms();
      for (const mechanism of [...SCRAM, ...SCRAM_PLUS, 'PLAIN']) assert.ok(offered.includes(mechanism), `${listener}: ${mechanism} missing from ${offered.join(', ')}`);
      assert.ok(offered.indexOf('SCRAM-SHA-512-PLUS') < offered.indexOf('SCRAM-SHA-1'), 'strongest first');
      assert.equal(offered.indexOf('PLAIN'), offered.length - 1, 'PLAIN last');
      // XEP-0440: which channel bindings this connection can do.
      const bindings = client.features().getChild('sasl-channel-binding', 'urn:xmpp:sasl-cb:0');
      assert.deepEqual(bindings?.getChildren('channel-binding').map((b) => b.attrs.type), ['tls-exporter', 'tls-server-end-point']);
      assert.equal(client.features().getChild('starttls', 'urn:ietf:params:xml:ns:xmpp-tls'), undefined, 'no STARTTLS once TLS is on');
    }
  });

  for (const mechanism of SCRAM) {
    it(`logs in with ${mechanism} over STARTTLS and binds`, async () => {
      const client = track(await server.connect({ name: mechanism }));
      await client.login('alice', 'alice-secret', { mechanism });
      assert.match(await client.bind(), /^alice@localhost\/.+$/);
    });
  }

  for (const mechanism of SCRAM_PLUS) {
    for (const channelBinding of BINDINGS) {
      for (const listener of ['starttls', 'direct'] as const) {
        it(`logs in with ${mechanism} and ${channelBinding} over ${listener === 'direct' ? 'direct TLS' : 'STARTTLS'} (TLS 1.3)`, async () => {
          const client = track(await server.connect({ listener, name: `${mechanism}/${channelBinding}` }));
          assert.equal(client.tlsSocket?.getProtocol(), 'TLSv1.3');
          await client.login('alice', 'alice-secret', { mechanism, channelBinding });
          assert.equal(await client.bind('plus'), 'alice@localhost/plus');
        });
      }
    }
  }

  it('logs in with PLAIN over TLS, both with the initial response and after an empty challenge', async () => {
    const client = track(await server.connect({ listener: 'direct' }));
    await client.login('bob', 'bob-secret', { mechanism: 'PLAIN' });
    assert.equal(await client.bind('plain'), 'bob@localhost/plain');

    const second = track(await server.connect());
    second.send(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'/>`);
    await second.expect(`<challenge xmlns='${NS_SASL}'/>`);
    second.send(`<response xmlns='${NS_SASL}'>${b64('\0bob\0bob-secret')}</response>`);
    await second.expect(`<success xmlns='${NS_SASL}'/>`);
  });

  it('completes SCRAM when the client sends no initial response (empty challenge first)', async () => {
    const client = track(await server.connect());
    const scram = new ScramClient({ mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'alice-secret' });
    client.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-256'/>`);
    await client.expect(`<challenge xmlns='${NS_SASL}'/>`);
    client.send(`<response xmlns='${NS_SASL}'>${b64(scram.first())}</response>`);
    const first = await client.expect(`<challenge xmlns='${NS_SASL}'/>`);
    client.send(`<response xmlns='${NS_SASL}'>${b64(scram.final(unb64(first)))}</response>`);
    const success = await client.expect(`<success xmlns='${NS_SASL}'/>`);
    scram.verify(unb64(success));
  });

  it('does not offer PLAIN or -PLUS without TLS, and refuses them as <invalid-mechanism/>', async () => {
    const client = track(await server.connect({ listener: 'plain' }));
    assert.deepEqual(client.mechanisms(), ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1']);
    assert.equal(client.features().getChild('sasl-channel-binding', 'urn:xmpp:sasl-cb:0'), undefined);
    for (const mechanism of ['PLAIN', 'SCRAM-SHA-256-PLUS'] as const) {
      client.send(`<auth xmlns='${NS_SASL}' mechanism='${mechanism}'>${b64('\0alice\0alice-secret')}</auth>`);
      await client.expect(`<failure xmlns='${NS_SASL}'><invalid-mechanism/></failure>`);
    }
    // Two failures of three: the stream is still good for a proper login.
    await client.login('alice', 'alice-secret', { mechanism: 'SCRAM-SHA-1' });
    assert.match(await client.bind(), /^alice@localhost\//);
  });

  it("accepts SCRAM's 'y' flag where the server offers no channel binding", async () => {
    const client = track(await server.connect({ listener: 'plain' }));
    await client.login('alice', 'alice-secret', { mechanism: 'SCRAM-SHA-256', gs2Flag: 'y' });
  });

  it('offers STARTTLS and only the non-PLUS SCRAM mechanisms before TLS on an optional-TLS listener', async () => {
    const client = track(await ScriptedClient.connect({ port: server.port('starttls-optional'), domain: 'localhost', tls: 'none', name: 'optional' }));
    assert.ok(client.features().getChild('starttls', 'urn:ietf:params:xml:ns:xmpp-tls'));
    assert.equal(client.features().getChild('starttls', 'urn:ietf:params:xml:ns:xmpp-tls')?.getChild('required'), undefined);
    assert.deepEqual(client.mechanisms(), ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1']);
    await client.startTls();
    assert.ok(client.mechanisms().includes('SCRAM-SHA-256-PLUS'));
    assert.ok(client.mechanisms().includes('PLAIN'));
  });

  it('answers an unsupported mechanism with <invalid-mechanism/>', async () => {
    const client = track(await server.connect());
    // Mechanism names are case-sensitive (RFC 4422 §3.1). Two of three attempts used.
    for (const mechanism of ['DIGEST-MD5', 'scram-sha-256']) {
      client.send(`<auth xmlns='${NS_SASL}' mechanism='${mechanism}'>${b64('n,,n=alice,r=abc')}</auth>`);
      await client.expect(`<failure xmlns='${NS_SASL}'><invalid-mechanism/></failure>`);
    }
    await client.login('alice', 'alice-secret');
  });

  it('reports a wrong password as <not-authorized/> and lets the client retry on the same stream', async () => {
    const client = track(await server.connect());
    const first = await client.authenticate('alice', 'wrong-secret', { mechanism: 'SCRAM-SHA-512' });
    assert.deepEqual(first.ok ? 'ok' : first.condition, 'not-authorized');
    const second = await client.authenticate('alice', 'still-wrong', { mechanism: 'PLAIN' });
    assert.deepEqual(second.ok ? 'ok' : second.condition, 'not-authorized');
    await client.login('alice', 'alice-secret', { mechanism: 'SCRAM-SHA-256' });
    assert.match(await client.bind(), /^alice@localhost\//);
  });

  it('fails an unknown user exactly like a wrong password, at the last step', async () => {
    const client = track(await server.connect());
    const scram = await scramExchange(client, 'SCRAM-SHA-256', { username: 'nobody', password: 'x' });
    assert.ok(scram.challenged, 'an unknown user gets a salt like a real one');
    assert.equal(scram.outcome.getName(), 'failure');
    assert.equal(conditionOf(scram.outcome), 'not-authorized');
    const plain = await client.authenticate('nobody', 'x', { mechanism: 'PLAIN' });
    assert.equal(plain.ok ? 'ok' : plain.condition, 'not-authorized');
  });

  it('closes the stream with <not-authorized/> after auth.max_attempts failures', async () => {
    const client = track(await server.connect());
    for (let attempt = 1; attempt <= 3; attempt++) {
      const outcome = await client.authenticate('alice', `wrong-${attempt}`);
      assert.equal(outcome.ok ? 'ok' : outcome.condition, 'not-authorized', `attempt ${attempt}`);
    }
    await client.expectStreamError('not-authorized');
  });

  it('does not count an aborted exchange as a failed attempt', async () => {
    const client = track(await server.connect());
    for (let i = 0; i < 4; i++) {
      client.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-256'>${b64('n,,n=alice,r=abcdefgh')}</auth>`);
      await client.expect(`<challenge xmlns='${NS_SASL}'/>`);
      client.send(`<abort xmlns='${NS_SASL}'/>`);
      await client.expect(`<failure xmlns='${NS_SASL}'><aborted/></failure>`);
    }
    await client.login('alice', 'alice-secret');
    assert.match(await client.bind(), /^alice@localhost\//);
  });

  it('refuses a -PLUS login whose channel binding comes from another TLS connection', async () => {
    const { cert } = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
    for (const channelBinding of BINDINGS) {
      const client = track(await server.connect({ listener: 'direct', name: `mitm/${channelBinding}` }));
      // What a man in the middle would bind to: its own TLS session and certificate.
      const tlsSocket = forgedSocket(client.tlsSocket!, { exporter: Buffer.alloc(32, 0x5a), certificate: new X509Certificate(cert) });
      const { outcome } = await scramExchange(client, 'SCRAM-SHA-256-PLUS', { username: 'alice', password: 'alice-secret', channelBinding, tlsSocket });
      assert.equal(outcome.getName(), 'failure', outcome.toString());
      assert.equal(conditionOf(outcome), 'not-authorized');
      // The genuine binding on the same stream works.
      await client.login('alice', 'alice-secret', { mechanism: 'SCRAM-SHA-256-PLUS', channelBinding });
    }
  });

  it("refuses a client that says 'y' (it could bind but thinks the server cannot) where -PLUS is offered", async () => {
    for (const listener of ['starttls', 'direct'] as const) {
      const client = track(await server.connect({ listener }));
      const outcome = await client.authenticate('alice', 'alice-secret', { mechanism: 'SCRAM-SHA-256', gs2Flag: 'y' });
      assert.equal(outcome.ok ? 'ok' : outcome.condition, 'not-authorized');
    }
  });

  it("lets a client whose binding type the server lacks fall back to 'y' without using up its attempts", async () => {
    // What slixmpp 1.8 does over TLS 1.3: every -PLUS with tls-unique, then plain SCRAM with 'y'.
    const client = track(await server.connect());
    for (const mechanism of SCRAM_PLUS) {
      client.send(`<auth xmlns='${NS_SASL}' mechanism='${mechanism}'>${b64('p=tls-unique,,n=alice,r=abcdefgh')}</auth>`);
      await client.expect(`<failure xmlns='${NS_SASL}'><malformed-request/><text>unsupported-channel-binding-type</text></failure>`);
    }
    await client.login('alice', 'alice-secret', { mechanism: 'SCRAM-SHA-512', gs2Flag: 'y' });
    assert.match(await client.bind(), /^alice@localhost\//);
  });

  it('refuses a -PLUS mechanism without channel binding, and channel binding on a non-PLUS mechanism', async () => {
    const client = track(await server.connect());
    client.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-256-PLUS'>${b64('n,,n=alice,r=abcdefgh')}</auth>`);
    await client.expect(`<failure xmlns='${NS_SASL}'><malformed-request/></failure>`);
    client.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-256'>${b64('p=tls-exporter,,n=alice,r=abcdefgh')}</auth>`);
    await client.expect(`<failure xmlns='${NS_SASL}'><malformed-request/></failure>`);
  });

  it('refuses a tampered SCRAM nonce or proof', async () => {
    const CLIENT_NONCE = 'client-nonce-0123456789';
    const client = track(await server.connect());
    const tampers: Array<(message: string) => string> = [
      // The client's part of the nonce only, dropping the server's.
      (m) => m.replace(/,r=([^,]+)/, () => `,r=${CLIENT_NONCE}`),
      // Another server nonce.
      (m) => m.replace(/,r=([^,]+)/, (_all, nonce: string) => `,r=${nonce.slice(0, -4)}AAAA`),
    ];
    for (const clientFinal of tampers) {
      const outcome = await client.authenticate('alice', 'alice-secret', { nonce: CLIENT_NONCE, tamper: { clientFinal } });
      assert.equal(outcome.ok ? 'ok' : outcome.condition, 'not-authorized');
    }
    const again = track(await server.connect());
    const proof = await again.authenticate('alice', 'alice-secret', {
      tamper: { clientFinal: (m) => m.replace(/,p=(.)/, (_all, c: string) => `,p=${c === 'A' ? 'B' : 'A'}`) },
    });
    assert.equal(proof.ok ? 'ok' : proof.condition, 'not-authorized');
  });

  it('accepts the own bare JID as authzid and refuses any other with <invalid-authzid/>', async () => {
    for (const mechanism of ['SCRAM-SHA-256', 'PLAIN'] as const) {
      const client = track(await server.connect({ name: `authzid/${mechanism}` }));
      for (const authzid of ['bob@localhost', 'alice@localhost/res', 'alice@other.test']) {
        const outcome = await client.authenticate('alice', 'alice-secret', { mechanism, authzid });
        assert.equal(outcome.ok ? 'ok' : outcome.condition, 'invalid-authzid', `${mechanism} as ${authzid}`);
        if (authzid === 'alice@localhost/res') break; // stay under max_attempts
      }
      await client.login('alice', 'alice-secret', { mechanism, authzid: 'alice@localhost' });
      assert.match(await client.bind(), /^alice@localhost\//);
    }
  });

  it('rejects malformed SASL data with precise conditions', async () => {
    const client = track(await server.connect());
    client.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-256'>not*base64!</auth>`);
    await client.expect(`<failure xmlns='${NS_SASL}'><incorrect-encoding/></failure>`);
    client.send(`<response xmlns='${NS_SASL}'>${b64('c=biws')}</response>`);
    await client.expect(`<failure xmlns='${NS_SASL}'><malformed-request/></failure>`);
    await client.login('alice', 'alice-secret');
  });

  it('normalises usernames: ALICE logs in as alice with SCRAM and PLAIN', async () => {
    for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256-PLUS', 'PLAIN'] as SaslMechanism[]) {
      const client = track(await server.connect({ name: `ALICE/${mechanism}` }));
      await client.login('ALICE', 'alice-secret', { mechanism });
      assert.equal(await client.bind('caps'), 'alice@localhost/caps');
    }
  });

  it('fails a username PRECIS rejects with <not-authorized/>, and the stream stays usable', async () => {
    const client = track(await server.connect());
    const scram = await client.authenticate('al ice', 'alice-secret', { mechanism: 'SCRAM-SHA-256' });
    assert.equal(scram.ok ? 'ok' : scram.condition, 'not-authorized');
    const plain = await client.authenticate('\u2163lice', 'alice-secret', { mechanism: 'PLAIN' }); // ROMAN NUMERAL FOUR
    assert.equal(plain.ok ? 'ok' : plain.condition, 'not-authorized');
    await client.login('alice', 'alice-secret');
    assert.match(await client.bind(), /^alice@localhost\//);
  });

  it('refuses a second SASL exchange after success', async () => {
    const client = track(await server.connect());
    await client.login('alice', 'alice-secret');
    client.send(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${b64('\0bob\0bob-secret')}</auth>`);
    const error = await client.expect('<stream:error/>');
    assert.equal(error.getChildElements().length > 0, true);
    await client.expectClosed();
  });

  it('keeps the authenticated domain: a restarted stream to another served domain is refused', async () => {
    const client = track(await server.connect());
    const outcome = await client.authenticate('alice', 'alice-secret');
    assert.ok(outcome.ok);
    await assert.rejects(client.openStream({ to: 'other.test' }), /but received <stream:error><host-unknown/);
    await client.expectClosed();

    const unknown = track(await server.connect());
    assert.ok((await unknown.authenticate('alice', 'alice-secret')).ok);
    await assert.rejects(unknown.openStream({ to: 'elsewhere.example' }), /but received <stream:error><host-unknown/);
    await unknown.expectClosed();
  });

  it('ignores a from on the restarted stream header: the bound JID is the authenticated one', async () => {
    const client = track(await server.connect());
    assert.ok((await client.authenticate('alice', 'alice-secret')).ok);
    await client.openStream({ from: 'bob@localhost' });
    assert.equal(await client.bind('desk'), 'alice@localhost/desk');
    const bob = track(await server.login('bob', 'bob-secret', { resource: 'r' }));
    client.send(`<message from='bob@localhost/r' to='bob@localhost/r' id='m1' type='chat'><body>who am I</body></message>`);
    await bob.expect(`<message from='alice@localhost/desk' id='m1'/>`);
  });

  it('authenticates users of each served domain only on their own domain', async () => {
    const carol = track(await server.login('carol@other.test', 'carol-secret', { resource: 'ward' }));
    assert.equal(carol.jid, 'carol@other.test/ward');
    const wrongDomain = track(await server.connect({ domain: 'localhost' }));
    const outcome = await wrongDomain.authenticate('carol', 'carol-secret');
    assert.equal(outcome.ok ? 'ok' : outcome.condition, 'not-authorized');
  });
});

describe('SASL failure throttling', () => {
  it('refuses further attempts from an address after auth.failures_per_address failures, even with the right password', async () => {
    const server = await startTestServer({
      toml: `${listeners('starttls_required')}
        [auth]
        max_attempts = 5
        failures_per_address = 2
        failures_per_account = 100
      `,
    });
    try {
      await server.addUser('alice', 'alice-secret');
      await server.addUser('bob', 'bob-secret');
      const client = track(await server.connect());
      for (const user of ['alice', 'bob']) {
        const outcome = await client.authenticate(user, 'wrong');
        assert.equal(outcome.ok ? 'ok' : outcome.condition, 'not-authorized');
      }
      const blocked = await client.authenticate('alice', 'alice-secret');
      assert.equal(blocked.ok ? 'ok' : blocked.condition, 'temporary-auth-failure');
      // A new connection from the same address is throttled too, for any account.
      const other = track(await server.connect());
      const again = await other.authenticate('bob', 'bob-secret', { mechanism: 'PLAIN' });
      assert.equal(again.ok ? 'ok' : again.condition, 'temporary-auth-failure');
    } finally {
      for (const client of clients.splice(0)) await client.close().catch(() => undefined);
      await server.stop();
    }
  });

  it('refuses further attempts on an account after auth.failures_per_account failures; other accounts are unaffected', async () => {
    const server = await startTestServer({
      toml: `${listeners('starttls_required')}
        [auth]
        max_attempts = 5
        failures_per_address = 100
        failures_per_account = 2
      `,
    });
    try {
      await server.addUser('alice', 'alice-secret');
      await server.addUser('bob', 'bob-secret');
      for (let i = 0; i < 2; i++) {
        const client = track(await server.connect());
        const outcome = await client.authenticate('alice', `wrong-${i}`, { mechanism: i === 0 ? 'SCRAM-SHA-1' : 'PLAIN' });
        assert.equal(outcome.ok ? 'ok' : outcome.condition, 'not-authorized');
      }
      const client = track(await server.connect());
      const blocked = await client.authenticate('ALICE', 'alice-secret');
      assert.equal(blocked.ok ? 'ok' : blocked.condition, 'temporary-auth-failure');
      // A wrong password gets the same answer: nothing tells a right guess from a wrong one.
      const guess = await client.authenticate('alice', 'guess', { mechanism: 'PLAIN' });
      assert.equal(guess.ok ? 'ok' : guess.condition, 'temporary-auth-failure');
      // The same stream (and address) can still log another account in.
      await client.login('bob', 'bob-secret');
      assert.match(await client.bind(), /^bob@localhost\//);
    } finally {
      for (const client of clients.splice(0)) await client.close().catch(() => undefined);
      await server.stop();
    }
  });
});

describe('PLAIN without TLS', () => {
  it('is offered and works on a cleartext listener when auth.plain_without_tls is set', async () => {
    const server = await startTestServer({
      toml: `${listeners('none')}
        [auth]
        plain_without_tls = true
      `,
    });
    try {
      await server.addUser('alice', 'alice-secret');
      const client = track(await server.connect({ listener: 'plain' }));
      assert.ok(client.mechanisms().includes('PLAIN'), client.mechanisms().join(', '));
      assert.ok(!client.mechanisms().some((m) => m.endsWith('-PLUS')));
      await client.login('alice', 'alice-secret', { mechanism: 'PLAIN' });
      assert.match(await client.bind(), /^alice@localhost\//);
    } finally {
      for (const client of clients.splice(0)) await client.close().catch(() => undefined);
      await server.stop();
    }
  });
});

describe('STARTTLS required', () => {
  it('offers no mechanisms before TLS and refuses <auth/> there with a stream error', async () => {
    const server = await startTestServer({ toml: listeners('starttls_required') });
    try {
      await server.addUser('alice', 'alice-secret');
      const client = track(await ScriptedClient.connect({ port: server.port('starttls'), domain: 'localhost', tls: 'none', name: 'cleartext' }));
      assert.deepEqual(client.mechanisms(), []);
      client.send(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${b64('\0alice\0alice-secret')}</auth>`);
      await client.expectStreamError('policy-violation');
    } finally {
      for (const client of clients.splice(0)) await client.close().catch(() => undefined);
      await server.stop();
    }
  });
});
