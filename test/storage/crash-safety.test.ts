/**
 * Crash safety of accepted messages, on SQLite and on PostgreSQL. The real server runs as a
 * child process with the message archive (XEP-0313, `[modules.mam]`) and offline storage
 * (XEP-0160) on; clients stream messages through it; it is killed with SIGKILL while messages
 * are still flowing, restarted on the same database, and everything the recipients can get
 * back is compared with what the senders were told.
 *
 * What a sender was told: it enables XEP-0198 stream management and sends <r/> every few
 * messages. The server answers an <r/> only once every stanza before it was handled (archive
 * and offline writes committed), so a message covered by an <a h=/> the sender received, and
 * for which it got no error, was accepted and must survive the crash. A message sent but not
 * covered by any <a/> may or may not have been read by the server: nothing is required of it.
 *
 * Two flows per backend:
 *  - bob leaves: alice streams to bob, who is online for the first part and then logs out, so
 *    later messages go to offline storage; the kill comes while bob is offline;
 *  - both online: alice and bob stream to each other, both available; the kill comes while
 *    messages are delivered live.
 * The kill lands right as alice receives an <a/>: the moment when everything it acknowledges
 * must already be committed while the next messages are being written (a server that answered
 * before its commit would lose them here).
 * Checked after the restart, for every accepted message:
 *  - it is in the recipient's archive (MAM query, paged to the end), was delivered to the
 *    recipient before the crash, or is delivered from offline storage when the recipient comes
 *    back: the guarantee itself;
 *  - more sharply, it is in the recipient's archive (the archive keeps every message on
 *    arrival, before delivery or offline storage see it) and in the sender's (the sender's copy
 *    is committed before the message goes on);
 *  - if it was sent after bob's session had ended, it is in bob's offline storage;
 * and no archive holds a message twice, or one nobody sent, or another body than the one sent.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { Element } from 'ltx';
import { pino } from 'pino';
import { storageOptions } from '../../src/config/load.ts';
import { openStorage } from '../../src/storage/index.ts';
import { startServerProcess, type ScriptedClient, type ServerProcess } from '../support/index.ts';
import { storageBackends } from '../support/storage-backends.ts';

const NS_SM = 'urn:xmpp:sm:3';
const NS_MAM = 'urn:xmpp:mam:2';
const NS_RSM = 'http://jabber.org/protocol/rsm';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_DELAY = 'urn:xmpp:delay';

const PASSWORDS = { alice: 'alice-secret', bob: 'bob-secret' } as const;
type User = keyof typeof PASSWORDS;
/** Messages a sender may have sent beyond the last one acknowledged. */
const WINDOW = 64;
/** A sender asks for an acknowledgement after this many messages (WINDOW is a multiple of it). */
const REQUEST_EVERY = 8;
/** Accepted messages wanted in each phase of a flow before it moves on (or the kill comes). */
const ACCEPTED_PER_PHASE = 300;
/** Each phase lasts at least this long, so the flow is well under way. */
const MIN_PHASE_MS = 1000;
const PAGE_SIZE = 250;

/** Both starts of the server: the archive explicitly on, offline storage on with room to spare. */
const MODULES_TOML = `
[modules.mam]
enabled = true

[modules.offline]
enabled = true
max_messages = 100000
`;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Sent {
  /** Its place in the sender's flow: stanza number index + 1 since stream management was enabled. */
  index: number;
  id: string;
  body: string;
}

/**
 * One side of a flow over a stream-managed stream: messages one after another to `to`, at most
 * WINDOW unacknowledged, an <r/> every REQUEST_EVERY messages; a reader answers the server's
 * own <r/>, records <a h=/>, error replies and the messages delivered to this client. Runs
 * until stopped or until the connection is gone. With `to` undefined it only receives.
 */
class Peer {
  readonly sent: Sent[] = [];
  /** The highest 'h' the server acknowledged: messages sent[0 .. acked-1] were handled. */
  acked = 0;
  /** Ids of messages this client got an error for, with the error. */
  readonly errors = new Map<string, string>();
  /** Ids of messages (with a body) delivered to this client. */
  readonly delivered = new Set<string>();
  private received = 0;
  private stopped = false;
  private onAck: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private readonly reading: Promise<void>;
  private readonly sending: Promise<void>;
  private readonly client: ScriptedClient;
  private readonly to: string | undefined;
  private readonly tag: string;

  /** Call right after <enabled/>: every stanza received from then on is counted. */
  constructor(client: ScriptedClient, to: string | undefined, tag: string) {
    this.client = client;
    this.to = to;
    this.tag = tag;
    this.reading = this.read();
    this.sending = to === undefined ? Promise.resolve() : this.send(to);
  }

  get closed(): boolean {
    return this.client.closed;
  }

  /** Accepted so far: acknowledged, no error. */
  accepted(): Sent[] {
    return this.sent.slice(0, this.acked).filter((m) => !this.errors.has(m.id));
  }

  /** Resolves when `acked` reaches `count` (or the connection is gone). */
  async ackedAtLeast(count: number): Promise<void> {
    while (this.acked < count && !this.client.closed) await sleep(20);
  }

  /** Calls `action` once, right when the next <a/> arrives (before anything else is read). */
  atNextAck(action: () => void): void {
    this.onAck = action;
  }

  /** Stops sending, waits for the connection to be gone and everything received to be read. */
  async finish(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.sending;
    await this.reading;
  }

  private async read(): Promise<void> {
    for (;;) {
      let element: Element;
      try {
        element = await this.client.next({ timeout: 3_600_000 });
      } catch {
        this.wake?.();
        return; // the connection is gone
      }
      const name = element.getName();
      if (element.getNS() === NS_SM && name === 'a') {
        const h = Number(element.attrs.h);
        if (Number.isSafeInteger(h) && h > this.acked) this.acked = h;
        const action = this.onAck;
        this.onAck = undefined;
        action?.();
      } else if (element.getNS() === NS_SM && name === 'r') {
        this.client.send(`<a xmlns='${NS_SM}' h='${this.received}'/>`);
      } else if (name === 'message' || name === 'presence' || name === 'iq') {
        this.received++;
        if (element.attrs.type === 'error') {
          if (typeof element.attrs.id === 'string') this.errors.set(element.attrs.id, element.toString());
        } else if (name === 'message' && element.getChild('body') !== undefined) {
          this.delivered.add(String(element.attrs.id));
        }
      }
      this.wake?.();
    }
  }

  private async send(to: string): Promise<void> {
    while (!this.stopped && !this.client.closed) {
      if (this.sent.length - this.acked >= WINDOW) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, 100);
          function done() {
            clearTimeout(timer);
            resolve();
          }
          this.wake = done;
        });
        this.wake = undefined;
        continue;
      }
      const index = this.sent.length;
      const id = `${this.tag}-${index}`;
      const body = `crash safety ${this.tag} message ${index} ${randomBytes(6).toString('hex')}`;
      this.sent.push({ index, id, body });
      this.client.send(`<message to='${to}' type='chat' id='${id}'><body>${body}</body></message>`);
      if (this.sent.length % REQUEST_EVERY === 0) this.client.send(`<r xmlns='${NS_SM}'/>`);
      // Let the socket drain and the reader run now and then.
      if (index % REQUEST_EVERY === REQUEST_EVERY - 1) await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

interface Archived {
  /** The archive's id. */
  archiveId: string;
  /** The original message's id attribute (the sender's). */
  id: string;
  from: string;
  to: string;
  body: string;
}

/** The whole archive of the client's account, oldest first, paged with RSM <after/>. */
async function wholeArchive(client: ScriptedClient): Promise<Archived[]> {
  const all: Archived[] = [];
  let after: string | undefined;
  for (let page = 0; ; page++) {
    const queryid = `all-${page}`;
    const id = client.id('mam');
    const rsm = `<set xmlns='${NS_RSM}'><max>${PAGE_SIZE}</max>${after === undefined ? '' : `<after>${after}</after>`}</set>`;
    client.send(`<iq type='set' id='${id}'><query xmlns='${NS_MAM}' queryid='${queryid}'>${rsm}</query></iq>`);
    let fin: Element | undefined;
    let onPage = 0;
    while (fin === undefined) {
      const element = await client.next({ timeout: 30_000 });
      if (element.getName() === 'iq' && element.attrs.id === id) {
        if (element.attrs.type !== 'result') throw client.failure(`MAM query failed: ${element.toString()}`);
        fin = element.getChild('fin', NS_MAM);
        if (fin === undefined) throw client.failure(`MAM result without <fin/>: ${element.toString()}`);
        continue;
      }
      const result = element.getName() === 'message' ? element.getChild('result', NS_MAM) : undefined;
      if (result === undefined || result.attrs.queryid !== queryid) throw client.failure(`unexpected during a MAM query: ${element.toString()}`);
      const forwarded = result.getChild('forwarded', NS_FORWARD);
      const original = forwarded?.getChild('message');
      if (original === undefined) throw client.failure(`archived result without a forwarded message: ${element.toString()}`);
      assert.ok(forwarded!.getChild('delay', NS_DELAY), `archived result without <delay/>: ${element.toString()}`);
      all.push({
        archiveId: String(result.attrs.id),
        id: String(original.attrs.id),
        from: String(original.attrs.from),
        to: String(original.attrs.to),
        body: original.getChildText('body') ?? '',
      });
      onPage++;
    }
    if (fin.attrs.complete === 'true') return all;
    const last = fin.getChild('set', NS_RSM)?.getChildText('last') ?? undefined;
    // An incomplete page must name where the next one starts.
    assert.ok(onPage > 0 && last !== undefined, `incomplete MAM page without results or <last/>: ${fin.toString()}`);
    after = last;
  }
}

function duplicates(ids: readonly string[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const id of ids) (seen.has(id) ? twice : seen).add(id);
  return [...twice];
}

/** An available session, its presence handled. */
async function online(server: ServerProcess, user: User): Promise<ScriptedClient> {
  const client = await server.login(user, PASSWORDS[user], { resource: 'device' });
  client.send('<presence/>');
  client.send("<iq type='get' id='ready'><ping xmlns='urn:xmpp:ping'/></iq>");
  await client.expect("<iq type='result' id='ready'/>", { skip: true });
  client.clear();
  return client;
}

async function enableSm(client: ScriptedClient): Promise<void> {
  client.send(`<enable xmlns='${NS_SM}'/>`);
  await client.expect(`<enabled xmlns='${NS_SM}'/>`);
}

/** What a dead server left in each account's offline storage (read with no server running). */
async function offlineQueues(server: ServerProcess): Promise<Record<User, number>> {
  const storage = await openStorage(storageOptions(server.config), pino({ level: 'silent' }));
  try {
    const count = async (username: User) => (await storage.offline.peek({ username, domain: server.domain })).length;
    return { alice: await count('alice'), bob: await count('bob') };
  } finally {
    await storage.close();
  }
}

/** The TOML of the second start: the same database the first one used. */
function sameStorageToml(first: ServerProcess): string {
  const storage = storageOptions(first.config);
  if (storage.backend === 'sqlite') {
    return `${MODULES_TOML}\n[storage]\nbackend = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(path.resolve(storage.path))}\n`;
  }
  return `${MODULES_TOML}\n[storage.postgres]\nschema = ${JSON.stringify(storage.schema)}\n`;
}

interface Recovered {
  archive: Archived[];
  /** Ids of the messages delivered from offline storage, in order. */
  offline: string[];
}

/** After the restart: the account's whole archive, then (once available) its offline messages. */
async function recover(server: ServerProcess, user: User, queued: number): Promise<Recovered> {
  const client = await server.login(user, PASSWORDS[user], { resource: 'device' });
  const archive = await wholeArchive(client);
  client.send('<presence/>');
  const offline: string[] = [];
  while (offline.length < queued) {
    const element = await client.next({ timeout: 30_000 });
    if (element.getName() !== 'message') continue;
    assert.ok(element.getChild('delay', NS_DELAY), `offline message without <delay/>: ${element.toString()}`);
    offline.push(String(element.attrs.id));
  }
  // Nothing more than what was stored comes (the queue is removed once sent).
  client.send("<iq type='get' id='after-offline'><ping xmlns='urn:xmpp:ping'/></iq>");
  for (;;) {
    const element = await client.next({ timeout: 30_000 });
    if (element.getName() === 'iq' && element.attrs.id === 'after-offline') break;
    if (element.getName() === 'message') throw client.failure(`a message beyond the stored queue: ${element.toString()}`);
  }
  await client.close();
  return { archive, offline };
}

/**
 * Every message `sender` had accepted is in the recipient's archive (or at least delivered,
 * live or from offline storage), and in the sender's archive; the recipient's archive holds
 * each of the sender's messages once, with the body sent.
 */
function checkDirection(label: string, sender: Peer, senderJid: string, recipientJid: string, recipient: Recovered, senderRecovered: Recovered, live: ReadonlySet<string>): void {
  const sentById = new Map(sender.sent.map((m) => [m.id, m]));
  const accepted = sender.accepted();
  const fromSender = recipient.archive.filter((m) => sentById.has(m.id));
  const archived = new Set(fromSender.map((m) => m.id));
  const offline = new Set(recipient.offline);

  for (const [id, error] of sender.errors) assert.ok(sentById.has(id), `${label}: an error for a message never sent: ${error}`);

  // The guarantee: nothing accepted is lost.
  const lost = accepted.filter((m) => !archived.has(m.id) && !live.has(m.id) && !offline.has(m.id));
  assert.deepEqual(lost.map((m) => m.id), [], `${label}: ${lost.length} accepted messages are neither archived, delivered, nor in offline storage`);

  // The archive keeps every accepted message, once, exactly as sent.
  const notArchived = accepted.filter((m) => !archived.has(m.id));
  assert.deepEqual(notArchived.map((m) => m.id), [], `${label}: ${notArchived.length} accepted messages are missing from the recipient's archive`);
  assert.deepEqual(duplicates(fromSender.map((m) => m.id)), [], `${label}: messages archived twice for the recipient`);
  for (const m of fromSender) {
    assert.equal(m.body, sentById.get(m.id)!.body, `${label}: archived body of ${m.id}`);
    assert.equal(m.from.split('/')[0], senderJid, `${label}: archived sender of ${m.id}`);
    assert.equal(m.to.split('/')[0], recipientJid, `${label}: archived recipient of ${m.id}`);
  }

  // The sender's copies.
  const senderCopies = senderRecovered.archive.filter((m) => sentById.has(m.id));
  const copied = new Set(senderCopies.map((m) => m.id));
  const notCopied = accepted.filter((m) => !copied.has(m.id));
  assert.deepEqual(notCopied.map((m) => m.id), [], `${label}: ${notCopied.length} accepted messages are missing from the sender's archive`);
  assert.deepEqual(duplicates(senderCopies.map((m) => m.id)), [], `${label}: messages archived twice for the sender`);
}

/** Archives and offline queues hold nothing that was not sent, and no id twice. */
function checkNothingForeign(label: string, recovered: Recovered, senders: Peer[]): void {
  const known = new Set(senders.flatMap((p) => p.sent.map((m) => m.id)));
  for (const m of recovered.archive) assert.ok(known.has(m.id), `${label}: the archive holds a message nobody sent: ${JSON.stringify(m)}`);
  assert.deepEqual(duplicates(recovered.archive.map((m) => m.archiveId)), [], `${label}: archive ids used twice`);
  for (const id of recovered.offline) assert.ok(known.has(id), `${label}: an offline message nobody sent: ${id}`);
  assert.deepEqual(duplicates(recovered.offline), [], `${label}: offline messages delivered twice`);
}

type Flow = 'bob leaves' | 'both online';

async function crashAndCheck(t: TestContext, backend: 'sqlite' | 'postgres', flow: Flow): Promise<void> {
  const run = randomBytes(3).toString('hex');
  const first = await startServerProcess({ storage: backend, toml: MODULES_TOML, users: { ...PASSWORDS }, listeners: ['starttls'] });
  let second: ServerProcess | undefined;
  try {
    const domain = first.domain;
    const jid = (user: User) => `${user}@${domain}`;

    // Bob online, a delivery target for his bare JID; in the second flow also sending.
    const bob = await online(first, 'bob');
    // Alice available too when she is to receive; she always sends.
    const alice = flow === 'both online' ? await online(first, 'alice') : await first.login('alice', PASSWORDS.alice, { resource: 'device' });
    await enableSm(alice);
    if (flow === 'both online') await enableSm(bob);
    const aliceFlow = new Peer(alice, jid('bob'), `alice-${run}`);
    const bobFlow = flow === 'both online' ? new Peer(bob, jid('alice'), `bob-${run}`) : undefined;
    const flows = bobFlow === undefined ? [aliceFlow] : [aliceFlow, bobFlow];

    const phase = async (from: number[]) => {
      const start = performance.now();
      await Promise.all(flows.map((f, i) => f.ackedAtLeast(from[i] + ACCEPTED_PER_PHASE)));
      await sleep(Math.max(0, MIN_PHASE_MS - (performance.now() - start)));
    };

    await phase(flows.map(() => 0));
    let bobLeftAt: number | undefined;
    let bobLive = new Set<string>();
    if (flow === 'bob leaves') {
      // Bob logs out mid-flow; once his connection is closed his session is gone, so what
      // alice sends from then on can only go to offline storage (and the archive).
      await bob.close(10_000);
      assert.ok(bob.closed, 'bob\'s connection closed');
      bobLeftAt = aliceFlow.sent.length;
      bobLive = new Set(bob.clear().filter((e) => e.getName() === 'message' && e.attrs.type !== 'error' && e.getChild('body') !== undefined).map((e) => String(e.attrs.id)));
      await phase([bobLeftAt]);
    }

    // SIGKILL while messages are still flowing: a little later, right as alice gets an <a/>
    // (when what the server acknowledged has just been, or should have been, committed, and
    // the next messages are being written), or after a while whatever comes.
    await sleep(Math.random() * 300);
    for (const f of flows) assert.ok(!f.closed, `the server closed a stream before the kill\n${first.stderr}`);
    let killed = false;
    const kill = () => {
      if (killed) return;
      killed = true;
      process.kill(first.child.pid!, 'SIGKILL');
    };
    aliceFlow.atNextAck(kill);
    const fallback = setTimeout(kill, 2000);
    const exit = await first.exited;
    clearTimeout(fallback);
    assert.equal(exit.signal, 'SIGKILL', `the server was killed, not ended otherwise: ${JSON.stringify(exit)}\n${first.stderr}`);
    await Promise.all(flows.map((f) => f.finish()));
    if (bobFlow !== undefined) bobLive = bobFlow.delivered;
    for (const f of flows) assert.ok(f.acked <= f.sent.length, `acknowledged ${f.acked} of ${f.sent.length} sent`);

    const queued = await offlineQueues(first);

    // Restart on the same database; each account comes back.
    second = await startServerProcess({ storage: backend, toml: sameStorageToml(first), listeners: ['starttls'] });
    const bobBack = await recover(second, 'bob', queued.bob);
    const aliceBack = await recover(second, 'alice', queued.alice);

    // --- the verdict -------------------------------------------------------------------------
    const accepted = aliceFlow.accepted();
    const afterBobLeft = bobLeftAt === undefined ? [] : accepted.filter((m) => m.index >= bobLeftAt!);
    const describeFlow = (name: string, f: Peer) => `${name} sent ${f.sent.length}, acknowledged ${f.acked}, errors ${f.errors.size}, accepted ${f.accepted().length}`;
    t.diagnostic(`${backend}, ${flow}: ${flows.map((f, i) => describeFlow(i === 0 ? 'alice' : 'bob', f)).join('; ')}`
      + (bobLeftAt === undefined ? '' : ` (${afterBobLeft.length} of alice's after bob left at message ${bobLeftAt})`)
      + `; bob: delivered live ${bobLive.size}, archive ${bobBack.archive.length}, offline ${bobBack.offline.length}`
      + `; alice: delivered live ${aliceFlow.delivered.size}, archive ${aliceBack.archive.length}, offline ${aliceBack.offline.length}`);

    checkDirection('alice to bob', aliceFlow, jid('alice'), jid('bob'), bobBack, aliceBack, bobLive);
    if (bobFlow !== undefined) checkDirection('bob to alice', bobFlow, jid('bob'), jid('alice'), aliceBack, bobBack, aliceFlow.delivered);
    checkNothingForeign('bob', bobBack, flows);
    checkNothingForeign('alice', aliceBack, flows);

    if (bobLeftAt !== undefined) {
      assert.ok(accepted.length > afterBobLeft.length && afterBobLeft.length > 0, 'alice had messages accepted before and after bob left');
      // What was accepted after bob's session ended waits in his offline storage.
      const offline = new Set(bobBack.offline);
      const notOffline = afterBobLeft.filter((m) => !offline.has(m.id));
      assert.deepEqual(notOffline.map((m) => m.id), [], `${notOffline.length} messages accepted while bob was offline are missing from offline storage`);
    } else {
      for (const f of flows) assert.ok(f.accepted().length > 0, 'both had messages accepted');
    }
  } finally {
    await second?.stop();
    await first.stop();
  }
}

describe('crash safety (SIGKILL while messages flow)', () => {
  for (const backend of storageBackends.map((b) => b.name)) {
    for (const flow of ['bob leaves', 'both online'] as const) {
      it(`keeps every accepted message in the archive or offline storage (${backend}, ${flow})`, { timeout: 120_000 }, async (t) => {
        await crashAndCheck(t, backend, flow);
      });
    }
  }
});
