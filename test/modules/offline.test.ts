/**
 * XEP-0160 offline messages with XEP-0203 delays, on both storage backends: what is kept and
 * what not, delivery order at the next available presence, the quota's error, that a second
 * resource does not get the queue again, and the error a sender gets when the database is gone.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';
import { assertExact } from './exact.ts';

const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const NS_DELAY = 'urn:xmpp:delay';
/** XEP-0082 DateTime in UTC with milliseconds, as the server writes it. */
const STAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

for (const storage of ['sqlite', 'postgres'] as const) {
  describe(`offline messages (${storage})`, () => {
    let server: TestServer;
    let alice: ScriptedClient;
    let counter = 0;

    before(async () => {
      server = await startTestServer({ storage, toml: '[modules.offline]\nmax_messages = 3\nwrite_timeout = 0.5' });
      await server.addUser('alice', 'alice-secret');
      alice = await server.login('alice', 'alice-secret', { resource: 'desk' });
    });
    after(() => server?.stop());

    /** A fresh account that has never been online. */
    async function newRecipient(): Promise<string> {
      const user = await server.addUser(`bob${++counter}`, 'bob-secret');
      return user.jid;
    }

    async function comeOnline(jid: string, presence = '<presence/>', resource = 'phone'): Promise<ScriptedClient> {
      const client = await server.login(jid, 'bob-secret', { resource });
      client.send(presence);
      return client;
    }

    /** Nothing but presence reaches `client` for a while. */
    async function noMessages(client: ScriptedClient): Promise<void> {
      await client.expectNothing(300).catch(() => undefined);
      assert.deepEqual(client.clear().filter((e) => e.getName() !== 'presence').map((e) => e.toString()), []);
    }

    /** The ping answer comes after every earlier stanza of alice's was handled. */
    async function handled(): Promise<void> {
      const id = alice.id('ping');
      await alice.iq(`<iq type='get' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    }

    it('advertises msgoffline', async () => {
      const info = await alice.iq("<iq type='get' id='disco' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
      const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      assert.ok(features.includes('msgoffline'), info.toString());
    });

    it('stores chat and normal messages and delivers them in order, stamped with the time they arrived', async () => {
      const bob = await newRecipient();
      const before = Date.now();
      alice.send(`<message to='${bob}' type='chat' id='o1'><body>first</body></message>`);
      alice.send(`<message to='${bob}' id='o2'><subject>handover</subject><body>second</body></message>`);
      alice.send(`<message to='${bob}/gone' type='chat' id='o3'><body>third</body><thread>t1</thread></message>`);
      await handled();
      const afterSend = Date.now();
      await alice.expectNothing(200);

      const client = await comeOnline(bob);
      const delay = "<delay xmlns='urn:xmpp:delay' from='localhost' stamp='{{any}}'>Offline storage</delay>";
      const expected = [
        `<message from='alice@localhost/desk' to='${bob}' type='chat' id='o1'><body>first</body>${delay}</message>`,
        `<message from='alice@localhost/desk' to='${bob}' id='o2'><subject>handover</subject><body>second</body>${delay}</message>`,
        `<message from='alice@localhost/desk' to='${bob}/gone' type='chat' id='o3'><body>third</body><thread>t1</thread>${delay}</message>`,
      ];
      let previous = 0;
      for (const pattern of expected) {
        const message = await client.expect(pattern, { skip: true });
        assertExact(message, pattern);
        const stamp = message.getChild('delay', NS_DELAY)!.attrs.stamp;
        assert.match(stamp, STAMP);
        const at = Date.parse(stamp);
        assert.ok(at >= before && at <= afterSend && at >= previous, `stamp ${stamp} between ${before} and ${afterSend}, not before ${previous}`);
        previous = at;
      }

      // Delivered once: a second resource and a later login get nothing more.
      const second = await comeOnline(bob, '<presence/>', 'tablet');
      await noMessages(second);
      assert.equal(await server.server.storage.offline.count({ username: bob.split('@')[0], domain: 'localhost' }), 0);
    });

    it('keeps nothing transient: headlines, groupchat, errors, chat states and no-store hints', async () => {
      const bob = await newRecipient();
      alice.send(`<message to='${bob}' type='headline' id='h'><body>news</body></message>`);
      alice.send(`<message to='${bob}' type='groupchat' id='g'><body>room</body></message>`);
      await alice.expect(`<message type='error' id='g' from='${bob}'><error type='cancel'><service-unavailable xmlns='${NS_STANZAS}'/></error></message>`);
      alice.send(`<message to='${bob}' type='error' id='e'><error type='cancel'><item-not-found xmlns='${NS_STANZAS}'/></error></message>`);
      alice.send(`<message to='${bob}' type='chat' id='cs'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
      alice.send(`<message to='${bob}' type='chat' id='ns'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>`);
      alice.send(`<message to='${bob}' type='chat' id='keep'><body>kept</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`);
      alice.send(`<message to='${bob}' type='chat' id='store'><encrypted xmlns='urn:xmpp:omemo:2'/><store xmlns='urn:xmpp:hints'/></message>`);
      await handled();
      await alice.expectNothing(200);
      const client = await comeOnline(bob);
      assert.equal((await client.expect("<message type='chat'/>", { skip: true })).attrs.id, 'keep');
      assert.equal((await client.expect("<message type='chat'/>")).attrs.id, 'store');
      await noMessages(client);
    });

    it('answers <resource-constraint/> when the queue is full, and keeps what it stored', async () => {
      const bob = await newRecipient();
      for (let n = 1; n <= 4; n++) alice.send(`<message to='${bob}' type='chat' id='q${n}'><body>${n}</body></message>`);
      const refused = await alice.expect("<message type='error' id='q4'/>");
      assertExact(refused, `<message type='error' id='q4' from='${bob}' to='alice@localhost/desk'><error type='wait'><resource-constraint xmlns='${NS_STANZAS}'/><text xmlns='${NS_STANZAS}' xml:lang='en'>the recipient's offline storage is full</text></error></message>`);
      const client = await comeOnline(bob);
      for (const id of ['q1', 'q2', 'q3']) await client.expect(`<message id='${id}'/>`, { skip: true });
      await noMessages(client);
    });

    it('waits for presence with a non-negative priority', async () => {
      const bob = await newRecipient();
      alice.send(`<message to='${bob}' type='chat' id='p1'><body>later</body></message>`);
      await handled();
      const client = await comeOnline(bob, '<presence><priority>-1</priority></presence>');
      await noMessages(client);
      client.send('<presence><priority>1</priority></presence>');
      await client.expect("<message id='p1'/>", { skip: true });
    });

    it('still refuses a message for an account that does not exist', async () => {
      alice.send("<message to='nobody@localhost' type='chat' id='x'><body>?</body></message>");
      await alice.expect(`<message type='error' id='x'><error type='cancel'><service-unavailable xmlns='${NS_STANZAS}'/></error></message>`);
    });

    it('tells the sender when the database is gone, and stores again once it is back', async () => {
      const bob = await newRecipient();
      const store = server.server.storage.offline as { pushMany: (...args: unknown[]) => Promise<number[]> };
      const original = store.pushMany;
      store.pushMany = async () => {
        throw Object.assign(new Error('connection lost'), { code: 'ECONNRESET' });
      };
      try {
        alice.send(`<message to='${bob}' type='chat' id='lost'><body>lost?</body></message>`);
        const error = await alice.expect("<message type='error' id='lost'/>", { timeout: 10_000 });
        assertExact(error, `<message type='error' id='lost' from='${bob}' to='alice@localhost/desk'><error type='wait'><internal-server-error xmlns='${NS_STANZAS}'/><text xmlns='${NS_STANZAS}' xml:lang='en'>offline storage is unavailable; try again later</text></error></message>`);
      } finally {
        store.pushMany = original;
      }
      alice.send(`<message to='${bob}' type='chat' id='kept'><body>kept</body></message>`);
      await handled();
      await alice.expectNothing(200);
      const client = await comeOnline(bob);
      assert.equal((await client.expect("<message type='chat'/>", { skip: true })).attrs.id, 'kept');
      await noMessages(client);
    });

    it('delivers a message stored while the recipient was coming online', async () => {
      const bob = await newRecipient();
      const store = server.server.storage.offline as { pushMany: (...args: unknown[]) => Promise<number[]> };
      const original = store.pushMany;
      let release!: () => void;
      const held = new Promise<void>((resolve) => { release = resolve; });
      store.pushMany = async (...args: unknown[]) => {
        await held;
        return original.apply(store, args);
      };
      try {
        // The write is in flight while bob comes online and his (empty) queue is read.
        alice.send(`<message to='${bob}' type='chat' id='race'><body>in flight</body></message>`);
        const client = await comeOnline(bob);
        await client.expect(`<presence from='${bob}/phone'/>`, { skip: true });
        await new Promise((resolve) => setTimeout(resolve, 100));
        release();
        await client.expect("<message id='race'/>", { skip: true });
      } finally {
        store.pushMany = original;
        release();
      }
    });
  });
}
