/**
 * XEP-0160 offline messages with XEP-0203 delays, on both storage backends: what is kept and
 * what not, delivery order at the next available presence, the quota's error, and that a
 * second resource does not get the queue again.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';

const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

for (const storage of ['sqlite', 'postgres'] as const) {
  describe(`offline messages (${storage})`, () => {
    let server: TestServer;
    let alice: ScriptedClient;
    let counter = 0;

    before(async () => {
      server = await startTestServer({ storage, toml: '[modules.offline]\nmax_messages = 3' });
      await server.addUser('alice', 'alice-secret');
      alice = await server.login('alice', 'alice-secret', { resource: 'desk' });
    });
    after(() => server?.stop());

    /** A fresh account that has never been online. */
    async function newRecipient(): Promise<string> {
      const user = await server.addUser(`bob${++counter}`, 'bob-secret');
      return user.jid;
    }

    async function comeOnline(jid: string, presence = '<presence/>'): Promise<ScriptedClient> {
      const client = await server.login(jid, 'bob-secret', { resource: 'phone' });
      client.send(presence);
      return client;
    }

    it('stores chat and normal messages and delivers them in order, with the time they arrived', async () => {
      const bob = await newRecipient();
      const before = Date.now();
      alice.send(`<message to='${bob}' type='chat' id='o1'><body>first</body></message>`);
      alice.send(`<message to='${bob}' id='o2'><subject>handover</subject><body>second</body></message>`);
      alice.send(`<message to='${bob}/gone' type='chat' id='o3'><body>third</body></message>`);
      await alice.expectNothing(300);

      const client = await comeOnline(bob);
      const received: string[] = [];
      for (const id of ['o1', 'o2', 'o3']) {
        const message = await client.expect(`<message from='alice@localhost/desk' id='${id}'><delay xmlns='urn:xmpp:delay' from='localhost'/></message>`, { skip: true });
        const stamp = Date.parse(message.getChild('delay', 'urn:xmpp:delay')!.attrs.stamp);
        assert.ok(stamp >= before - 1000 && stamp <= Date.now(), `stamp ${message.toString()}`);
        received.push(message.getChildText('body')!);
      }
      assert.deepEqual(received, ['first', 'second', 'third']);

      // Delivered once: a second resource and a later login get nothing more.
      const second = await server.login(bob, 'bob-secret', { resource: 'tablet' });
      second.send('<presence/>');
      await second.expectNothing(300).catch(() => undefined);
      assert.equal(second.clear().filter((e) => e.getName() === 'message').length, 0);
      assert.equal(await server.server.storage.offline.count({ username: bob.split('@')[0], domain: 'localhost' }), 0);
    });

    it('keeps nothing transient: headlines, errors, chat states and no-store hints', async () => {
      const bob = await newRecipient();
      alice.send(`<message to='${bob}' type='headline' id='h'><body>news</body></message>`);
      alice.send(`<message to='${bob}' type='chat' id='cs'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
      alice.send(`<message to='${bob}' type='chat' id='ns'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>`);
      alice.send(`<message to='${bob}' type='chat' id='keep'><body>kept</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`);
      await alice.expectNothing(300);
      const client = await comeOnline(bob);
      const message = await client.expect("<message type='chat'/>", { skip: true });
      assert.equal(message.attrs.id, 'keep');
      await client.expectNothing(300).catch(() => undefined);
      assert.deepEqual(client.clear().filter((e) => e.getName() === 'message').map((e) => e.attrs.id), []);
    });

    it('answers <resource-constraint/> when the queue is full, and keeps what it stored', async () => {
      const bob = await newRecipient();
      for (let n = 1; n <= 4; n++) alice.send(`<message to='${bob}' type='chat' id='q${n}'><body>${n}</body></message>`);
      await alice.expect(`<message type='error' id='q4' from='${bob}'><error type='wait'><resource-constraint xmlns='${NS_STANZAS}'/></error></message>`);
      const client = await comeOnline(bob);
      for (const id of ['q1', 'q2', 'q3']) await client.expect(`<message id='${id}'/>`, { skip: true });
    });

    it('waits for presence with a non-negative priority', async () => {
      const bob = await newRecipient();
      alice.send(`<message to='${bob}' type='chat' id='p1'><body>later</body></message>`);
      await alice.expectNothing(200);
      const client = await comeOnline(bob, '<presence><priority>-1</priority></presence>');
      await client.expectNothing(300).catch(() => undefined);
      assert.equal(client.clear().filter((e) => e.getName() === 'message').length, 0);
      client.send('<presence><priority>1</priority></presence>');
      await client.expect("<message id='p1'/>", { skip: true });
    });

    it('still refuses a message for an account that does not exist', async () => {
      alice.send("<message to='nobody@localhost' type='chat' id='x'><body>?</body></message>");
      await alice.expect(`<message type='error' id='x'><error type='cancel'><service-unavailable xmlns='${NS_STANZAS}'/></error></message>`);
    });
  });
}
