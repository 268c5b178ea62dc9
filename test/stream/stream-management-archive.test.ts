/**
 * XEP-0198 and XEP-0313 together, on SQLite and PostgreSQL, with the archive on: when a
 * session ends with stanzas its client never acknowledged, every unacknowledged message goes
 * to offline storage (not bounced, not dropped) with the delay stamp of when the server first
 * queued it, and arrives at the next login carrying the <stanza-id/> the live copy had; and no
 * message appears twice in either archive (the hand-over to offline storage does not route,
 * so does not archive, again).
 *
 * 1. A resumable session whose connection dies, never acknowledged, times out (resume_timeout
 *    1 s), including messages queued while it waited to be resumed.
 * 2. A client that never acknowledges and exceeds max_unacked: <policy-violation/>; what was
 *    queued and what comes after goes offline.
 * 3. Stream management without resumption, some messages acknowledged: the connection dies,
 *    what was not acknowledged goes offline, what was does not.
 * 4. A chat message to the full JID of a hibernating session, archived for the recipient on
 *    arrival, whose session expires before the archive write commits (the writes are held to
 *    make this deterministic): it must still be archived once, and its offline copy carry that
 *    archive id.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Element } from 'ltx';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';
import type { OfflineMessage } from '../../src/storage/types.ts';

const NS_SM = 'urn:xmpp:sm:3';
const NS_DELAY = 'urn:xmpp:delay';
const NS_SID = 'urn:xmpp:sid:0';
const NS_MAM = 'urn:xmpp:mam:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const DOMAIN = 'localhost';
/** [stream_management] resume_timeout, in ms. */
const RESUME_TIMEOUT_MS = 1000;
/** [stream_management] max_unacked. */
const MAX_UNACKED = 8;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const range = (prefix: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

/** A message as a client received it, and when (Date.now()). */
interface Received {
  message: Element;
  at: number;
}

/** The next `count` messages; <r/> and presence in between are skipped, anything else fails. */
async function messages(client: ScriptedClient, count: number): Promise<Received[]> {
  const out: Received[] = [];
  while (out.length < count) {
    const element = await client.next();
    if (element.getName() === 'message') out.push({ message: element, at: Date.now() });
    else if (element.getName() === 'presence' || (element.getName() === 'r' && element.getNS() === NS_SM)) continue;
    else throw client.failure(`expected a message, received ${element.toString()}`);
  }
  return out;
}

async function enable(client: ScriptedClient, resume: boolean): Promise<string | undefined> {
  client.send(`<enable xmlns='${NS_SM}'${resume ? " resume='true'" : ''}/>`);
  const enabled = await client.expect(`<enabled xmlns='${NS_SM}'/>`);
  return enabled.attrs.id as string | undefined;
}

/** The one <delay from='localhost'/> of a message (fails unless exactly one). */
function serverDelay(message: Element): Element {
  const delays = message.getChildren('delay', NS_DELAY).filter((d) => d.attrs.from === DOMAIN);
  assert.equal(delays.length, 1, `exactly one delay from the server: ${message.toString()}`);
  return delays[0];
}

/** The id of the one <stanza-id by=owner/> of a message (fails unless exactly one). */
function stanzaId(message: Element, owner: string): string {
  const ids = message.getChildren('stanza-id', NS_SID);
  assert.equal(ids.length, 1, `exactly one stanza-id: ${message.toString()}`);
  assert.equal(ids[0].attrs.by, owner, message.toString());
  const id = ids[0].attrs.id as string | undefined;
  assert.ok(id !== undefined && id !== '', message.toString());
  return id;
}

const stampOf = (message: Element) => Date.parse(serverDelay(message).attrs.stamp as string);

let queries = 0;

/** The whole archive of the client's account: per result, its archive id and the archived message. */
async function archiveOf(client: ScriptedClient): Promise<{ archiveId: string; message: Element }[]> {
  const id = `mam${++queries}`;
  client.send(`<iq type='set' id='${id}'><query xmlns='${NS_MAM}' queryid='${id}'><set xmlns='http://jabber.org/protocol/rsm'><max>100</max></set></query></iq>`);
  const out: { archiveId: string; message: Element }[] = [];
  for (;;) {
    const element = await client.next();
    if (element.getName() === 'iq' && element.attrs.id === id) {
      assert.equal(element.attrs.type, 'result', element.toString());
      const fin = element.getChild('fin', NS_MAM);
      assert.ok(fin !== undefined && fin.attrs.complete === 'true', `a complete archive: ${element.toString()}`);
      return out;
    }
    const result = element.getName() === 'message' ? element.getChild('result', NS_MAM) : undefined;
    if (result === undefined || result.attrs.queryid !== id) continue;
    const archived = result.getChild('forwarded', NS_FORWARD)?.getChild('message');
    assert.ok(archived !== undefined, element.toString());
    out.push({ archiveId: result.attrs.id as string, message: archived });
  }
}

for (const storage of ['sqlite', 'postgres'] as const) {
  describe(`unacknowledged messages of a session that ends, with the archive on (${storage})`, () => {
    let server: TestServer;
    let users = 0;

    before(async () => {
      server = await startTestServer({
        storage,
        toml: `
          [modules.mam]
          [stream_management]
          resume_timeout = ${RESUME_TIMEOUT_MS / 1000}
          max_unacked = ${MAX_UNACKED}
          ack_request_stanzas = 1000
          ack_request_delay = 3600
        `,
      });
    });
    after(() => server?.stop());

    /** A fresh account (bare JID), so no test meets another's sessions or messages. */
    async function user(prefix: string): Promise<{ name: string; jid: string }> {
      const name = `${prefix}${++users}`;
      const account = await server.addUser(name, `${name}-secret`);
      return { name, jid: account.jid };
    }
    function login(name: string, resource: string): Promise<ScriptedClient> {
      return server.login(name, `${name}-secret`, { resource, name: `${name}/${resource}` });
    }

    /** Polls the account's offline storage until it holds `count` messages (fails after the deadline). */
    async function offlineRows(name: string, count: number, timeoutMs = 8000): Promise<OfflineMessage[]> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const rows = await server.server.storage.offline.peek({ username: name, domain: DOMAIN });
        if (rows.length >= count) {
          assert.equal(rows.length, count, `offline storage of ${name}: ${rows.map((r) => r.stanza).join('\n')}`);
          return rows;
        }
        if (Date.now() > deadline) assert.fail(`offline storage of ${name} holds ${rows.length} messages after ${timeoutMs} ms, expected ${count}:\n${rows.map((r) => r.stanza).join('\n')}`);
        await sleep(25);
      }
    }

    /** Logs in again (a new session, no resumption), sends presence, gets exactly `count` messages from offline storage. */
    async function comeBack(name: string, count: number): Promise<{ client: ScriptedClient; offline: Element[] }> {
      const client = await login(name, 'again');
      client.send('<presence/>');
      const offline = (await messages(client, count)).map((r) => r.message);
      // Nothing more: no message a second time.
      await sleep(300);
      const extra = client.clear().filter((e) => e.getName() === 'message');
      assert.deepEqual(extra.map((e) => e.toString()), [], 'no further message from offline storage');
      return { client, offline };
    }

    /**
     * Each of `expected` (message ids, in order) exactly once in the owner's archive and in
     * the sender's; the owner's archive ids are the ones the offline copies carry.
     */
    async function assertArchivedOnce(owner: { client: ScriptedClient; jid: string }, sender: ScriptedClient, expected: string[], offline: Element[]): Promise<void> {
      const owned = await archiveOf(owner.client);
      assert.deepEqual(owned.map((r) => r.message.attrs.id), expected, `each message once in ${owner.jid}'s archive`);
      const offlineIds = new Map(offline.map((m) => [m.attrs.id as string, stanzaId(m, owner.jid)]));
      for (const { archiveId, message } of owned) {
        assert.equal(archiveId, offlineIds.get(message.attrs.id as string), `the offline copy of ${message.attrs.id} carries its archive id`);
        assert.equal(stanzaId(message, owner.jid), archiveId, message.toString());
      }
      const sent = await archiveOf(sender);
      assert.deepEqual(sent.map((r) => r.message.attrs.id), expected, "each message once in the sender's archive");
    }

    /** The sender got no error (nothing bounced) nor anything else. */
    async function assertNothingBounced(sender: ScriptedClient): Promise<void> {
      const received = sender.clear().filter((e) => e.getName() === 'message');
      assert.deepEqual(received.map((e) => e.toString()), [], 'nothing bounced to the sender');
    }

    it('a resumable session that times out: every unacknowledged message waits offline with its first delay stamp and stanza-id, archived once', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const desk = await login(bob.name, 'desk');
      assert.ok(await enable(desk, true), 'resumable');
      desk.send('<presence/>');
      await desk.expect(`<presence from='${desk.jid}'/>`);
      const phone = await login(alice.name, 'phone');

      const sentAt = Date.now();
      for (let i = 1; i <= 5; i++) phone.send(`<message to='${bob.jid}' type='chat' id='s${i}'><body>live ${i}</body></message>`);
      const live = await messages(desk, 5);
      assert.deepEqual(live.map((r) => r.message.attrs.id), range('s', 1, 5));
      const liveIds = new Map(live.map((r) => [r.message.attrs.id as string, stanzaId(r.message, bob.jid)]));

      // Never acknowledged: the connection just dies.
      desk.destroy();
      const destroyedAt = Date.now();
      // And two more for the session while it waits to be resumed.
      for (let i = 6; i <= 7; i++) phone.send(`<message to='${bob.jid}' type='chat' id='s${i}'><body>while away ${i}</body></message>`);

      const rows = await offlineRows(bob.name, 7);
      for (const row of rows.slice(0, 5)) {
        assert.ok(row.receivedAt >= destroyedAt + RESUME_TIMEOUT_MS - 100, `handed to offline storage at the timeout, not before: ${row.receivedAt - destroyedAt} ms after the connection died`);
      }

      const back = await comeBack(bob.name, 7);
      assert.deepEqual(back.offline.map((m) => m.attrs.id), range('s', 1, 7), 'all of them, in order');
      back.offline.forEach((message, i) => {
        assert.equal(message.attrs.to, bob.jid, message.toString());
        const stamp = stampOf(message);
        if (i < 5) {
          // Stamped when the server first queued it for the live session, not at the timeout.
          assert.ok(stamp >= sentAt && stamp <= live[i].at, `${message.toString()}: stamp ${stamp - sentAt} ms after sending, received live ${live[i].at - sentAt} ms after`);
          assert.ok(stamp <= destroyedAt, message.toString());
          assert.ok(rows[i].receivedAt - stamp >= RESUME_TIMEOUT_MS - 100, 'the stamp is not the time of the timeout');
          assert.equal(stanzaId(message, bob.jid), liveIds.get(message.attrs.id as string), 'the same stanza-id as the live copy');
        } else {
          assert.ok(stamp >= destroyedAt - 1 && stamp <= rows[i].receivedAt, message.toString());
          stanzaId(message, bob.jid);
        }
      });

      await assertArchivedOnce({ client: back.client, jid: bob.jid }, phone, range('s', 1, 7), back.offline);
      await assertNothingBounced(phone);
      await back.client.close();
      await phone.close();
    });

    it('a client that never acknowledges and exceeds max_unacked: <policy-violation/>, its messages wait offline, archived once', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const desk = await login(bob.name, 'desk');
      await enable(desk, true);
      const phone = await login(alice.name, 'phone');
      const total = MAX_UNACKED + 4;
      // To the full JID: those after the session ended are handled as if sent to the bare JID.
      let batch = '';
      for (let i = 1; i <= total; i++) batch += `<message to='${desk.jid}' type='chat' id='p${i}'><body>${i}</body></message>`;
      const sentAt = Date.now();
      phone.send(batch);
      const live = await messages(desk, MAX_UNACKED);
      assert.deepEqual(live.map((r) => r.message.attrs.id), range('p', 1, MAX_UNACKED));
      const liveIds = new Map(live.map((r) => [r.message.attrs.id as string, stanzaId(r.message, bob.jid)]));
      await desk.expectStreamError('policy-violation');

      await offlineRows(bob.name, total);
      const back = await comeBack(bob.name, total);
      assert.deepEqual(back.offline.map((m) => m.attrs.id), range('p', 1, total), 'all of them, in order');
      back.offline.forEach((message, i) => {
        const stamp = stampOf(message);
        assert.ok(stamp >= sentAt, message.toString());
        const id = stanzaId(message, bob.jid);
        if (i < MAX_UNACKED) {
          assert.ok(stamp <= live[i].at, `${message.toString()}: stamped when first queued`);
          assert.equal(id, liveIds.get(message.attrs.id as string), 'the same stanza-id as the live copy');
        }
      });

      await assertArchivedOnce({ client: back.client, jid: bob.jid }, phone, range('p', 1, total), back.offline);
      await assertNothingBounced(phone);
      await back.client.close();
      await phone.close();
    });

    it('without resumption: what was not acknowledged when the connection died waits offline, archived once', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const desk = await login(bob.name, 'desk');
      assert.equal(await enable(desk, false), undefined, 'not resumable');
      desk.send('<presence/>');
      await desk.expect(`<presence from='${desk.jid}'/>`);
      const phone = await login(alice.name, 'phone');
      const sentAt = Date.now();
      for (let i = 1; i <= 6; i++) phone.send(`<message to='${bob.jid}' type='chat' id='n${i}'><body>${i}</body></message>`);
      const live = await messages(desk, 6);
      assert.deepEqual(live.map((r) => r.message.attrs.id), range('n', 1, 6));
      const liveIds = new Map(live.map((r) => [r.message.attrs.id as string, stanzaId(r.message, bob.jid)]));
      // The presence echo and the first two messages acknowledged, and the server has seen it
      // (its answer to <r/> comes after the <a/> was handled; bob sent one stanza, presence).
      desk.send(`<a xmlns='${NS_SM}' h='3'/><r xmlns='${NS_SM}'/>`);
      await desk.expect(`<a xmlns='${NS_SM}' h='1'/>`);
      desk.destroy();

      await offlineRows(bob.name, 4);
      const back = await comeBack(bob.name, 4);
      assert.deepEqual(back.offline.map((m) => m.attrs.id), range('n', 3, 6), 'the unacknowledged ones, in order, and only those');
      back.offline.forEach((message, i) => {
        const stamp = stampOf(message);
        assert.ok(stamp >= sentAt && stamp <= live[i + 2].at, `${message.toString()}: stamped when first queued`);
        assert.equal(stanzaId(message, bob.jid), liveIds.get(message.attrs.id as string), 'the same stanza-id as the live copy');
      });

      // n1 and n2 were delivered (acknowledged) and archived; n3-n6 also went offline: each once.
      const owned = await archiveOf(back.client);
      assert.deepEqual(owned.map((r) => r.message.attrs.id), range('n', 1, 6), `each message once in ${bob.jid}'s archive`);
      for (const { archiveId, message } of owned) assert.equal(archiveId, liveIds.get(message.attrs.id as string));
      await assertArchivedOnce({ client: back.client, jid: bob.jid }, phone, range('n', 1, 6), [...live.slice(0, 2).map((r) => r.message), ...back.offline]);
      await assertNothingBounced(phone);
      await back.client.close();
      await phone.close();
    });

    it('a chat message to the full JID, archived for the recipient while its hibernated session expires, is archived once', async () => {
      const alice = await user('alice');
      const bob = await user('bob');
      const desk = await login(bob.name, 'desk');
      assert.ok(await enable(desk, true), 'resumable');
      const phone = await login(alice.name, 'phone');
      desk.destroy();

      // Hold the archive's writes, so the message is archived (for bob, whose session is still
      // registered, hibernating) but not yet delivered when that session ends.
      const store = server.server.storage.archive as { append: (messages: unknown[]) => Promise<void> };
      const original = store.append;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      let held = 0;
      store.append = async function (this: unknown, messages: unknown[]) {
        held++;
        await gate;
        return original.call(this, messages);
      };
      try {
        phone.send(`<message to='${bob.jid}/desk' type='chat' id='f1'><body>in flight</body></message>`);
        const deadline = Date.now() + 8000;
        while (held === 0 || server.server.router.sessions.resourcesOf(bob.jid) !== undefined) {
          if (Date.now() > deadline) assert.fail(`archive write held: ${held > 0}; session still registered: ${server.server.router.sessions.resourcesOf(bob.jid) !== undefined}`);
          await sleep(20);
        }
      } finally {
        store.append = original;
        release();
      }

      // Delivery then finds no session for the full JID: a chat message is handled as if sent to
      // the bare JID, and goes offline. It was archived already, on arrival for the full JID.
      await offlineRows(bob.name, 1);
      const back = await comeBack(bob.name, 1);
      assert.equal(back.offline[0].attrs.id, 'f1');
      stampOf(back.offline[0]);
      await assertArchivedOnce({ client: back.client, jid: bob.jid }, phone, ['f1'], back.offline);
      await assertNothingBounced(phone);
      await back.client.close();
      await phone.close();
    });
  });
}
