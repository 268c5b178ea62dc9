/**
 * A client that closes its stream (RFC 6120 §4.4) has everything it sent before its
 * </stream:stream> handled, also when handling waits for storage and when the client drops
 * the connection right after: no message it sent is lost.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';

describe('closing a stream with stanzas still being handled', () => {
  let server: TestServer;
  let counter = 0;

  // The archive makes every message wait for a commit, so the close arrives while they are handled.
  before(async () => {
    server = await startTestServer({ toml: '[modules.mam]\n[modules.offline]\nmax_messages = 100' });
  });
  after(() => server?.stop());

  async function account(name: string): Promise<string> {
    return (await server.addUser(`${name}${++counter}`, 'secret')).jid;
  }

  /** Ten messages to `to`, each followed by a ping, then </stream:stream>, in one write. */
  function burstAndClose(client: ScriptedClient, to: string): string[] {
    const bodies: string[] = [];
    let xml = '';
    for (let n = 1; n <= 10; n++) {
      bodies.push(`m${n}`);
      xml += `<message to='${to}' type='chat' id='m${n}'><body>m${n}</body></message><iq type='get' id='p${n}'><ping xmlns='urn:xmpp:ping'/></iq>`;
    }
    client.sendRaw(xml + '</stream:stream>');
    return bodies;
  }

  async function offlineBodies(jid: string, count: number): Promise<string[]> {
    const client = await server.login(jid, 'secret', { resource: 'back' });
    client.send('<presence/>');
    const bodies: string[] = [];
    while (bodies.length < count) {
      const stanza = await client.next({ timeout: 10_000 });
      if (stanza.name === 'message') bodies.push(stanza.getChildText('body') ?? '');
    }
    await client.expectNothing(200);
    await client.close();
    return bodies;
  }

  it('answers every stanza sent before the close, then closes', async () => {
    const alice = await server.login(await account('alice'), 'secret');
    const bob = await account('bob');
    burstAndClose(alice, bob);
    for (let n = 1; n <= 10; n++) await alice.expect(`<iq type='result' id='p${n}'/>`, { timeout: 10_000 });
    await alice.expectClosed({ timeout: 10_000 });
    assert.deepEqual(await offlineBodies(bob, 10), Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
  });

  it('keeps every message of a client that drops the connection right after closing its stream', async () => {
    const alice = await server.login(await account('alice'), 'secret');
    const bob = await account('bob');
    const sent = burstAndClose(alice, bob);
    alice.destroy();
    assert.deepEqual(await offlineBodies(bob, 10), sent);
  });

  it('sends what arrives for a closing session with a dropped connection to offline storage', async () => {
    const carol = await account('carol');
    const alice = await server.login(carol, 'secret', { resource: 'closing' });
    alice.send('<presence/>');
    await alice.expect(`<presence from='${alice.jid}'/>`, { skip: true });
    const dave = await server.login(await account('dave'), 'secret');
    const bob = await account('bob');
    burstAndClose(alice, bob);
    alice.destroy();
    // Once the server has seen the connection go, while the session still handles its burst
    // (ten archived messages stored offline one after another), a message for it must not
    // vanish into the dead socket.
    await new Promise((resolve) => setTimeout(resolve, 20));
    dave.send(`<message to='${carol}' type='chat' id='late'><body>late</body></message>`);
    assert.deepEqual(await offlineBodies(bob, 10), Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
    assert.deepEqual(await offlineBodies(carol, 1), ['late']);
  });
});
