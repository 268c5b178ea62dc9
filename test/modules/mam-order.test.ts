/**
 * One client's messages overlap their archive writes (the stream pipelines them) yet arrive,
 * and are archived, exactly in the order sent, on both storage backends: long bursts with
 * presence, headlines, refused and blocked messages between them, to online and offline
 * recipients, with preferences and account lookups that have to go to the database.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Element } from 'ltx';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';

const MAM = 'urn:xmpp:mam:2';
const RSM = 'http://jabber.org/protocol/rsm';
const FWD = 'urn:xmpp:forward:0';
const SID = 'urn:xmpp:sid:0';
const DELAY = 'urn:xmpp:delay';
const BLOCKING = 'urn:xmpp:blocking';

/** Every body in `client`'s archive, oldest first, paging 50 at a time. */
async function archivedBodies(client: ScriptedClient): Promise<string[]> {
  const bodies: string[] = [];
  let after = '';
  for (;;) {
    const id = client.id('mam');
    const cursor = after === '' ? '' : `<after>${after}</after>`;
    client.send(`<iq type='set' id='${id}'><query xmlns='${MAM}' queryid='${id}'><set xmlns='${RSM}'><max>50</max>${cursor}</set></query></iq>`);
    for (;;) {
      const element = await client.next({ timeout: 10_000 });
      if (element.name === 'iq' && element.attrs.id === id) {
        assert.equal(element.attrs.type, 'result', element.toString());
        const fin = element.getChild('fin', MAM)!;
        if (fin.attrs.complete === 'true') return bodies;
        after = fin.getChild('set', RSM)!.getChildText('last')!;
        break;
      }
      const forwarded = element.getChild('result', MAM)?.getChild('forwarded', FWD)?.getChild('message');
      if (forwarded !== undefined) bodies.push(forwarded.getChildText('body') ?? '');
    }
  }
}

/** The next `count` stanzas `client` receives. */
async function collect(client: ScriptedClient, count: number): Promise<Element[]> {
  const received: Element[] = [];
  while (received.length < count) received.push(await client.next({ timeout: 20_000 }));
  return received;
}

/** A short label per stanza: `message:id`, `presence:type`, `error:id`. */
function label(stanza: Element): string {
  if (stanza.attrs.type === 'error') return `error:${stanza.attrs.id}`;
  if (stanza.name === 'presence') return `presence:${stanza.attrs.type ?? 'available'}`;
  return `${stanza.name}:${stanza.attrs.id}`;
}

for (const storage of ['sqlite', 'postgres'] as const) {
  describe(`one sender's messages in order while their archive writes overlap (${storage})`, () => {
    let server: TestServer;
    let counter = 0;

    before(async () => {
      server = await startTestServer({ storage, toml: '[modules.mam]\n[modules.offline]\nmax_messages = 1000' });
    });
    after(() => server?.stop());

    async function user(name: string, options: { online?: boolean } = {}): Promise<{ jid: string; client: ScriptedClient }> {
      const account = await server.addUser(`${name}${++counter}`, 'secret');
      const client = await server.login(account.jid, 'secret', { resource: 'r' });
      if (options.online !== false) {
        client.send('<presence/>');
        await client.expect(`<presence from='${client.jid}'/>`, { skip: true });
      }
      return { jid: account.jid, client };
    }

    it('delivers and archives 300 messages sent at once in order, with presence and headlines between them', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const sent: string[] = [];
      const archived: string[] = [];
      for (let n = 1; n <= 300; n++) {
        alice.client.send(`<message to='${bob.jid}' type='chat' id='c${n}'><body>c${n}</body></message>`);
        sent.push(`message:c${n}`);
        archived.push(`c${n}`);
        if (n % 50 === 0) {
          // Not archived: delivered at once, unless it had to wait for the messages before it.
          alice.client.send(`<message to='${bob.jid}' type='headline' id='h${n}'><body>h${n}</body></message>`);
          sent.push(`message:h${n}`);
          alice.client.send(`<presence to='${bob.jid}'><status>s${n}</status></presence>`);
          sent.push('presence:available');
        }
      }
      const received = await collect(bob.client, sent.length);
      assert.deepEqual(received.map(label), sent);
      // Every chat message carries the id it has in bob's archive; they increase as sent.
      const ids = received.filter((s) => s.attrs.type === 'chat').map((s) => s.getChild('stanza-id', SID)!.attrs.id as string);
      assert.deepEqual([...ids].sort(), ids);
      assert.deepEqual(await archivedBodies(bob.client), archived);
      assert.deepEqual(await archivedBodies(alice.client), archived);
      await alice.client.expectNothing(100);
    });

    it('keeps order across recipients, refused messages and a recipient who blocks the sender', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const carol = await user('carol');
      await carol.client.iq(`<iq type='set' id='block'><block xmlns='${BLOCKING}'><item jid='${alice.jid}'/></block></iq>`, { skip: true });
      const toBob: string[] = [];
      const refused: string[] = [];
      for (let n = 1; n <= 120; n++) {
        alice.client.send(`<message to='${bob.jid}' type='chat' id='b${n}'><body>b${n}</body></message>`);
        toBob.push(`message:b${n}`);
        if (n % 10 === 0) {
          alice.client.send(`<message to='${carol.jid}' type='chat' id='blocked${n}'><body>blocked${n}</body></message>`);
          alice.client.send(`<message to='nobody@elsewhere.example' type='chat' id='remote${n}'><body>remote${n}</body></message>`);
          refused.push(`error:blocked${n}`, `error:remote${n}`);
        }
      }
      assert.deepEqual((await collect(bob.client, toBob.length)).map(label), toBob);
      // Errors may overtake messages still being archived, but each one comes.
      assert.deepEqual((await collect(alice.client, refused.length)).map(label).sort(), [...refused].sort());
      await carol.client.expectNothing(200);
      assert.deepEqual(await archivedBodies(bob.client), toBob.map((l) => l.slice('message:'.length)));
    });

    it('archives a chat message to a resource that is gone in its turn, not after the messages sent after it', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const order = ['b0', 'g1', 'b1', 'g2', 'b2'];
      for (const id of order) {
        // g*: to a resource bob does not have; a chat message is then delivered to his bare JID.
        const to = id.startsWith('g') ? `${bob.jid}/gone` : bob.client.jid;
        alice.client.send(`<message to='${to}' type='chat' id='${id}'><body>${id}</body></message>`);
      }
      const received = await collect(bob.client, order.length);
      assert.deepEqual(received.map((m) => m.attrs.id), order);
      const ids = received.map((m) => m.getChild('stanza-id', SID)!.attrs.id as string);
      assert.deepEqual([...ids].sort(), ids, 'stanza ids increase as the messages were sent');
      assert.deepEqual(await archivedBodies(bob.client), order);
    });

    it('refuses a message whose archive write fails while the one before it is still being stored, and goes on', async () => {
      const alice = await user('alice');
      const bob = await user('bob', { online: false });
      await bob.client.close();
      const storage = server.server.storage as unknown as {
        archive: { append: (batch: { body?: string }[]) => Promise<void> };
        offline: { pushMany: (...args: unknown[]) => Promise<unknown> };
      };
      const { append, pushMany } = { append: storage.archive.append, pushMany: storage.offline.pushMany };
      // A write that no retry can fix (a check constraint) for the second message's batch...
      storage.archive.append = async function (this: unknown, batch) {
        if (batch.some((m) => m.body === 'poison')) throw Object.assign(new Error('constraint failed'), { code: 'SQLITE_CONSTRAINT_CHECK' });
        return append.call(this, batch);
      };
      // ...while the first one's offline write is slow, so the second waits at its gate.
      storage.offline.pushMany = async function (this: unknown, ...args) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return pushMany.apply(this, args);
      };
      try {
        alice.client.send(`<message to='${bob.jid}' type='chat' id='fine'><body>fine</body></message>`);
        alice.client.send(`<message to='${bob.jid}' type='chat' id='poisoned'><body>poison</body></message>`);
        await alice.client.expect(`<message type='error' id='poisoned'/>`, { timeout: 10_000 });
        await alice.client.iq(`<iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>`, { skip: true, timeout: 10_000 });
      } finally {
        storage.archive.append = append;
        storage.offline.pushMany = pushMany;
      }
      alice.client.send(`<message to='${bob.jid}' type='chat' id='later'><body>later</body></message>`);
      await alice.client.iq(`<iq type='get' id='after2'><ping xmlns='urn:xmpp:ping'/></iq>`, { skip: true, timeout: 10_000 });
      const back = await server.login(bob.jid, 'secret', { resource: 'again' });
      back.send('<presence/>');
      const bodies: string[] = [];
      while (bodies.length < 2) {
        const stanza = await back.next({ timeout: 10_000 });
        if (stanza.name === 'message') bodies.push(stanza.getChildText('body') ?? '');
      }
      assert.deepEqual(bodies, ['fine', 'later']);
    });

    it('stores a burst for an offline recipient in order, and it comes back so at the next login', async () => {
      const alice = await user('alice');
      const bob = await user('bob', { online: false });
      await bob.client.close();
      const bodies = Array.from({ length: 200 }, (_, i) => `o${i + 1}`);
      for (const body of bodies) alice.client.send(`<message to='${bob.jid}' type='chat' id='${body}'><body>${body}</body></message>`);
      // The sender's stanzas are handled in order: this answer comes after every one was stored.
      await alice.client.iq(`<iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>`, { skip: true, timeout: 30_000 });

      const back = await server.login(bob.jid, 'secret', { resource: 'again' });
      back.send('<presence/>');
      const received: Element[] = [];
      while (received.length < bodies.length) {
        const stanza = await back.next({ timeout: 20_000 });
        if (stanza.name === 'message') received.push(stanza);
      }
      assert.deepEqual(received.map((m) => m.getChildText('body')), bodies);
      assert.ok(received.every((m) => m.getChild('delay', DELAY) !== undefined), 'every stored message has its delay');
      assert.deepEqual(await archivedBodies(back), bodies);
      assert.deepEqual(await archivedBodies(alice.client), bodies);
    });
  });
}
