/**
 * A Python client nobody here wrote: slixmpp (Debian's python3-slixmpp 1.8, which .ci/run
 * installs) against a two-domain server.
 *  - slixmpp_client.py logs in over STARTTLS with SCRAM, uses the basic services and chats with
 *    a scripted client on the other domain.
 *  - slixmpp_sessions.py covers what spans time: offline messages delivered with XEP-0203
 *    delays; the XEP-0313 archive paged with the plugin's XEP-0059 paging (forwards, backwards
 *    from the last page, filtered by correspondent); XEP-0198 resumption after the TCP
 *    connection is reset, with messages sent while it is gone; XEP-0280 carbons enabled and
 *    disabled with the plugin, next to a scripted client on another resource of the account.
 * Messages are sent by scripted clients, each one only once the server has stored it (archive
 * or offline queue), so that every delay stamp can be checked against the moment it was sent.
 * The Python side only reports what slixmpp saw (JSON lines); the asserting happens here.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';
import { createLogger } from '../../src/util/log.ts';
import type { UserRef } from '../../src/storage/types.ts';

const SCRIPT = fileURLToPath(new URL('./slixmpp_client.py', import.meta.url));
const SESSIONS_SCRIPT = fileURLToPath(new URL('./slixmpp_sessions.py', import.meta.url));
// Debian's interpreter, where python3-slixmpp lives (not a pyenv one earlier on the PATH).
const PYTHON = '/usr/bin/python3';

// .ci/run installs it; on a developer machine without it these tests say so and are skipped.
const missing = spawnSync(PYTHON, ['-c', 'import slixmpp']).status !== 0
  ? 'needs python3-slixmpp (apt-get install python3-slixmpp)'
  : false;

/**
 * The archive on, explicitly (test servers leave it out unless asked), with page limits above
 * what the client asks so that its RSM <max/> rules. Stream management on, resumable for a minute; `smExtra`
 * adds to its table.
 */
function sessionsToml(smExtra = ''): string {
  return `
[modules.mam]
enabled = true
default_mode = "always"
default_page_size = 50
max_page_size = 250

[stream_management]
enabled = true
resume_timeout = 60
${smExtra}
`;
}

const ALICE: UserRef = { username: 'alice', domain: 'localhost' };
/** XEP-0082 DateTime in UTC as the server writes it. */
const STAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
/** An archive id (stanza-id.ts): 21 characters of lower-case Crockford base32. */
const ARCHIVE_ID = /^[0-9a-hjkmnp-tv-z]{21}$/;

interface SlixEvent {
  event: string;
  [key: string]: unknown;
}

/** A run of slixmpp_sessions.py: its JSON lines as events, in order. */
class SlixmppRun {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly events: SlixEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private consumed = 0;
  private exitCode: number | null | undefined;
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(PYTHON, [SESSIONS_SCRIPT, ...args]);
    this.child.stderr.on('data', (chunk: Buffer) => { this.stderr += chunk.toString(); });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      let event: SlixEvent;
      try {
        event = JSON.parse(line) as SlixEvent;
      } catch {
        event = { event: 'output', line };
      }
      this.events.push(event);
      this.wake();
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => {
      this.exitCode = code;
      this.wake();
      resolve(code);
    }));
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private describe(): string {
    return `events so far: ${JSON.stringify(this.events)}\n--- slixmpp stderr ---\n${this.stderr}`;
  }

  /** The next event, which must be `name` (an 'error' event or the end of the process fails). */
  async next(name: string, timeout = 15_000): Promise<SlixEvent> {
    const event = await new Promise<SlixEvent | undefined>((resolve, reject) => {
      const check = () => {
        if (this.consumed < this.events.length) return finish(this.events[this.consumed++]);
        if (this.exitCode !== undefined) return finish(undefined);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`slixmpp: no '${name}' event within ${timeout} ms\n${this.describe()}`));
      }, timeout);
      const finish = (value: SlixEvent | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(value);
      };
      this.waiters.add(check);
      check();
    });
    if (event === undefined) throw new Error(`slixmpp exited (${this.exitCode}) before a '${name}' event\n${this.describe()}`);
    if (event.event !== name) throw new Error(`slixmpp: expected a '${name}' event, got ${JSON.stringify(event)}\n${this.describe()}`);
    return event;
  }

  /** A line on the script's stdin. */
  tell(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** Wait for exit 0 (the script exits on its own after 'done'). */
  async finished(timeout = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([this.exited, new Promise((resolve) => { timer = setTimeout(resolve, timeout, 'still running'); })]);
    clearTimeout(timer);
    assert.equal(code, 0, `slixmpp exit\n${this.describe()}`);
  }

  stop(): void {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
  }
}

/**
 * Server logs at info level whatever MEERKAT_TEST_LOG says (the stream management case reads
 * them to know when the server noticed the lost connection); echoed when MEERKAT_TEST_LOG is set.
 */
function infoLogs(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const echo = process.env.MEERKAT_TEST_LOG !== undefined;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = chunk.toString('utf8');
      lines.push(text.trimEnd());
      if (echo) process.stderr.write(text);
      done();
    },
  });
  const level = ['debug', 'trace'].includes(process.env.MEERKAT_TEST_LOG ?? '') ? process.env.MEERKAT_TEST_LOG! : 'info';
  return { log: createLogger(level, sink), lines };
}

/** The first log entry with this msg whose fields include `fields`, polling until `timeout`. */
async function logEntry(lines: string[], msg: string, fields: Record<string, unknown>, timeout = 5000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeout;
  for (;;) {
    for (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === msg && Object.entries(fields).every(([k, v]) => entry[k] === v)) return entry;
    }
    if (Date.now() > deadline) throw new Error(`no log entry '${msg}' ${JSON.stringify(fields)} within ${timeout} ms:\n${lines.join('\n')}`);
    await sleep(10);
  }
}

/** Poll until `check` holds. */
async function until(what: string, check: () => Promise<boolean>, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting until ${what}`);
    await sleep(2);
  }
}

interface Sent {
  body: string;
  /** Full JID of the sender. */
  from: string;
  /** Date.now() just before it was sent and just after the server had stored it. */
  sentAt: number;
  storedAt: number;
}

/**
 * Sends a chat message and waits until the server has stored it for alice (`stored(n)`: n
 * messages are), so its stamp must lie in [sentAt, storedAt].
 */
async function sendStored(client: ScriptedClient, to: string, body: string, stored: () => Promise<boolean>): Promise<Sent> {
  const sentAt = Date.now();
  client.send(`<message to='${to}' type='chat' id='${client.id('m')}'><body>${body}</body></message>`);
  await until(`'${body}' is stored`, stored);
  return { body, from: client.jid!, sentAt, storedAt: Date.now() };
}

/** No error came back to a sender (discarding whatever else it received). */
function assertNoBounces(client: ScriptedClient): void {
  const errors = client.clear().filter((e) => e.attrs.type === 'error');
  assert.deepEqual(errors.map(String), [], `${client.name} got errors`);
}

/** A delay stamp as the server wrote it and slixmpp parsed it, within the moments around sending. */
function assertStamp(item: Record<string, unknown>, sent: Sent, where: string): void {
  const stamp = item.stamp as string;
  assert.match(stamp, STAMP, `${where}: stamp`);
  const at = Date.parse(stamp);
  assert.equal(item.stamp_ms, at, `${where}: slixmpp reads the stamp ${stamp} as the same instant`);
  assert.ok(sent.sentAt <= at && at <= sent.storedAt,
    `${where}: stamp ${stamp} outside [${new Date(sent.sentAt).toISOString()}, ${new Date(sent.storedAt).toISOString()}]`);
}

async function sessionsServer(smExtra?: string, storage: 'sqlite' | 'postgres' = 'sqlite'): Promise<{ server: TestServer; logs: string[]; cafile: string }> {
  const { log, lines } = infoLogs();
  const server = await startTestServer({ hosts: ['localhost', 'clinic.test'], toml: sessionsToml(smExtra), log, storage });
  const cafile = path.join(server.dataDir, 'ca.pem');
  await writeFile(cafile, server.certificate);
  await server.addUser('alice', 'alice-secret');
  await server.addUser('bob@clinic.test', 'bob-secret');
  await server.addUser('carol', 'carol-secret');
  return { server, logs: lines, cafile };
}

describe('slixmpp', { skip: missing }, () => {
  it('logs in with STARTTLS and SCRAM, uses roster, disco, ping, version, vCard, blocking and chats across domains', async () => {
    const server = await startTestServer({ hosts: ['localhost', 'clinic.test'] });
    try {
      await server.addUser('alice', 'alice-secret');
      await server.addUser('bob@clinic.test', 'bob-secret');
      const cafile = path.join(server.dataDir, 'ca.pem');
      await writeFile(cafile, server.certificate);
      const bob = await server.login('bob@clinic.test', 'bob-secret', { resource: 'pager' });

      const child = spawn(PYTHON, [SCRIPT, 'alice@localhost/slix', 'alice-secret', 'bob@clinic.test/pager', String(server.port('starttls')), cafile]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

      const message = await bob.expect("<message from='alice@localhost/slix' type='chat'><body>hello from slixmpp</body></message>", { timeout: 30_000 });
      bob.send(`<message to='${message.attrs.from}' type='chat'><body>hello from bob</body></message>`);
      assert.equal(await exited, 0, stderr);
      const seen = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
      assert.equal(seen.error, undefined, stderr);
      assert.equal(seen.jid, 'alice@localhost/slix');
      assert.equal(seen.ping, true);
      assert.equal(seen.version, 'Meerkat');
      assert.equal(seen.vcard, 'Alice Liddell');
      assert.deepEqual(seen.blocked, ['spam@example.com']);
      assert.equal(seen.reply, 'hello from bob');
      for (const feature of ['http://jabber.org/protocol/disco#info', 'urn:xmpp:ping', 'jabber:iq:version', 'urn:xmpp:blocking', 'vcard-temp']) {
        assert.ok((seen.features as string[]).includes(feature), `${feature} in ${JSON.stringify(seen.features)}`);
      }
    } finally {
      await server.stop();
    }
  });

  // Offline messages and archive paging on both backends: the default (SQLite) and PostgreSQL.
  for (const storage of ['sqlite', 'postgres'] as const) it(`receives messages sent while it was offline, in order, with XEP-0203 delays (and archive ids) (${storage})`, { timeout: 30_000 }, async () => {
    const { server, cafile } = await sessionsServer(undefined, storage);
    let slix: SlixmppRun | undefined;
    try {
      const bob = await server.login('bob@clinic.test', 'bob-secret', { resource: 'pager' });
      const carol = await server.login('carol', 'carol-secret', { resource: 'desk' });
      const sent: Sent[] = [];
      for (let i = 0; i < 6; i++) {
        const sender = i % 3 === 2 ? carol : bob;
        const queued = i + 1;
        sent.push(await sendStored(sender, 'alice@localhost', `offline ${i} from ${sender === bob ? 'bob' : 'carol'}`,
          async () => (await server.server.storage.offline.count(ALICE)) >= queued));
      }

      slix = new SlixmppRun(['offline', 'alice@localhost/slix', 'alice-secret', String(server.port('starttls')), cafile, String(sent.length)]);
      const done = await slix.next('done');
      await slix.finished();
      const received = done.received as Record<string, unknown>[];
      assert.deepEqual(received.map((m) => m.body), sent.map((m) => m.body), 'every message exactly once, in order');
      received.forEach((message, i) => {
        const where = `offline message ${i}`;
        assert.equal(message.from, sent[i].from, `${where}: from`);
        assert.equal(message.delay_from, 'localhost', `${where}: the delay says who delayed it`);
        assertStamp(message, sent[i], where);
        const ids = message.stanza_ids as { id: string; by: string }[];
        assert.equal(ids.length, 1, `${where}: one stanza-id, alice's archive's: ${JSON.stringify(ids)}`);
        assert.equal(ids[0].by, 'alice@localhost', where);
        assert.match(ids[0].id, ARCHIVE_ID, where);
      });
      assert.equal((await server.server.storage.offline.count(ALICE)), 0, 'the offline queue is empty once delivered');
      assertNoBounces(bob);
      assertNoBounces(carol);
    } finally {
      slix?.stop();
      await server.stop();
    }
  });

  for (const storage of ['sqlite', 'postgres'] as const) it(`pages through the XEP-0313 archive with XEP-0059: forwards, backwards from the last page, filtered by correspondent (${storage})`, { timeout: 30_000 }, async () => {
    const { server, cafile } = await sessionsServer(undefined, storage);
    let slix: SlixmppRun | undefined;
    try {
      const bob = await server.login('bob@clinic.test', 'bob-secret', { resource: 'pager' });
      const carol = await server.login('carol', 'carol-secret', { resource: 'desk' });
      // 57 from bob (the other domain, sent to alice's bare JID) with 5 from carol in between.
      const sent: Sent[] = [];
      let fromBob = 0;
      let fromCarol = 0;
      for (let i = 0; i < 62; i++) {
        const byCarol = i % 12 === 5;
        const body = byCarol ? `carol ${fromCarol++}` : `bob ${fromBob++}`;
        const archived = i + 1;
        sent.push(await sendStored(byCarol ? carol : bob, 'alice@localhost', body,
          async () => (await server.server.storage.archive.query({ owner: ALICE, max: 0, fromEnd: false })).count >= archived));
      }
      assert.equal(fromBob, 57);
      const PAGE = 10;

      slix = new SlixmppRun(['mam', 'alice@localhost/slix', 'alice-secret', String(server.port('starttls')), cafile,
        String(PAGE), 'bob@clinic.test', 'carol@localhost']);
      const done = await slix.next('done', 20_000);
      await slix.finished();
      const aliceJid = done.jid as string;
      assert.equal(aliceJid, 'alice@localhost/slix');

      type Result = Record<string, unknown> & { id: string; body: string };
      type Page = { complete: string | null; first: string | null; first_index: string | null; last: string | null; count: string | null; results: Result[] };
      const bySent = new Map(sent.map((m) => [m.body, m]));
      const checkResult = (result: Result, page: Page, where: string) => {
        const original = bySent.get(result.body);
        assert.ok(original !== undefined, `${where}: unknown body ${JSON.stringify(result.body)}`);
        assert.match(result.id, ARCHIVE_ID, `${where}: result id`);
        assert.ok(typeof result.queryid === 'string' && result.queryid !== '', `${where}: queryid`);
        assert.equal(result.queryid, page.results[0].queryid, `${where}: one queryid per page`);
        assert.equal(result.from, 'alice@localhost', `${where}: results come from the archive, alice's bare JID`);
        assert.equal(result.to, aliceJid, `${where}: to the querying resource`);
        assert.equal(result.original_from, original.from, `${where}: the archived message's sender`);
        assert.equal(result.original_to, 'alice@localhost', `${where}: the archived message's recipient`);
        assert.equal(result.original_type, 'chat', where);
        assert.deepEqual(result.stanza_ids, [{ id: result.id, by: 'alice@localhost' }], `${where}: the archived message carries its archive id as XEP-0359 stanza-id`);
        assertStamp(result, original, where);
      };
      /**
       * Pages in the order they were fetched (forwards: from the start; backwards: from the
       * end), each oldest first: together `expected` exactly once, each <fin/> right about its
       * page and the result set.
       */
      const checkPages = (name: string, pages: Page[], expected: Sent[], backwards: boolean) => {
        const chunks: Sent[][] = [];
        if (backwards) {
          for (let end = expected.length; end > 0; end -= PAGE) chunks.push(expected.slice(Math.max(0, end - PAGE), end));
        } else {
          for (let start = 0; start < expected.length; start += PAGE) chunks.push(expected.slice(start, start + PAGE));
        }
        assert.deepEqual(pages.map((p) => p.results.map((r) => r.body)), chunks.map((c) => c.map((m) => m.body)), `${name}: pages`);
        const ids = new Set<string>();
        pages.forEach((page, n) => {
          const where = `${name} page ${n}`;
          const first = page.results[0];
          const last = page.results[page.results.length - 1];
          assert.equal(page.first, first.id, `${where}: <first/>`);
          assert.equal(page.last, last.id, `${where}: <last/>`);
          assert.equal(page.count, String(expected.length), `${where}: <count/>`);
          assert.equal(page.first_index, String(expected.indexOf(bySent.get(first.body)!)), `${where}: <first index=''/>`);
          assert.ok(n === 0 || first.queryid !== pages[n - 1].results[0].queryid, `${where}: a new queryid per query`);
          const isLast = n === pages.length - 1;
          assert.equal(page.complete === 'true', isLast, `${where}: complete='${page.complete}' (only the last page in the paging direction is complete)`);
          page.results.forEach((result, i) => {
            checkResult(result, page, `${where} result ${i}`);
            assert.ok(!ids.has(result.id), `${where}: id ${result.id} seen twice`);
            ids.add(result.id);
          });
        });
        const inOrder = (backwards ? [...pages].reverse() : pages).flatMap((p) => p.results);
        const sorted = [...inOrder].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        assert.deepEqual(inOrder.map((r) => r.id), sorted.map((r) => r.id), `${name}: archive ids increase with time`);
      };

      checkPages('forwards', done.forward as Page[], sent, false);
      checkPages('backwards', done.backward as Page[], sent, true);
      const bobs = sent.filter((m) => m.from.startsWith('bob@'));
      checkPages('with bob', done.with_peer as Page[], bobs, false);

      // The same message has the same archive id whichever query finds it.
      const idOf = new Map((done.forward as Page[]).flatMap((p) => p.results).map((r) => [r.body, r.id]));
      for (const result of [...(done.backward as Page[]), ...(done.with_peer as Page[])].flatMap((p) => p.results)) {
        assert.equal(result.id, idOf.get(result.body), `archive id of '${result.body}'`);
      }
      const carols = sent.filter((m) => m.from.startsWith('carol@'));
      const withOther = done.with_other as Result[];
      assert.deepEqual(withOther.map((r) => r.body), carols.map((m) => m.body), 'iterate(with_jid=carol): all of carol\'s, in order');
      withOther.forEach((result, i) => {
        assert.equal(result.id, idOf.get(result.body), `with carol ${i}: archive id`);
        assert.equal(result.original_from, carols[i].from, `with carol ${i}: sender`);
        assertStamp(result, carols[i], `with carol ${i}`);
      });
      assertNoBounces(bob);
      assertNoBounces(carol);
    } finally {
      slix?.stop();
      await server.stop();
    }
  });

  it('resumes its XEP-0198 session after the connection is reset: every message exactly once, sent before, while gone and after', { timeout: 30_000 }, async () => {
    // The server asks for no ack (<r/>) of its own before the connection is reset, so what
    // slixmpp handled is acknowledged only by its 'h' in <resume/>, and every count is exact.
    const { server, logs, cafile } = await sessionsServer('ack_request_stanzas = 1000\nack_request_delay = 600');
    let slix: SlixmppRun | undefined;
    try {
      const bob = await server.login('bob@clinic.test', 'bob-secret', { resource: 'pager' });
      const aliceFull = 'alice@localhost/slix';
      const archived = (n: number) => async () => (await server.server.storage.archive.query({ owner: ALICE, max: 0, fromEnd: false })).count >= n;
      let count = 0;
      const send = async (to: string, body: string) => {
        count++;
        await sendStored(bob, to, body, archived(count));
      };
      const BEFORE = 3;
      const DURING = 5;
      const AFTER = 2;
      slix = new SlixmppRun(['sm', aliceFull, 'alice-secret', String(server.port('starttls')), cafile,
        String(BEFORE), String(DURING), String(AFTER), 'bob@clinic.test/pager']);
      const ready = await slix.next('ready');
      assert.equal(ready.jid, aliceFull);
      const smId = ready.sm_id as string;
      assert.ok(typeof smId === 'string' && smId.length > 0, 'resumable: <enabled/> gave an id');

      // Received (and not acknowledged) when slixmpp resets the connection.
      for (let i = 0; i < BEFORE; i++) await send(aliceFull, `before ${i}`);
      const killed = await slix.next('killed');
      const lost = await logEntry(logs, 'connection lost: session waits to be resumed', { jid: aliceFull });
      // Sent to it so far: its own presence, the roster result, the messages; none acknowledged.
      assert.equal(killed.handled, BEFORE + 2, 'slixmpp counted what it handled');
      assert.equal(lost.unacked, BEFORE + 2, `the server kept what it sent unacknowledged: ${JSON.stringify(lost)}`);

      // While it is gone: to its full JID and to the bare JID (the hibernating resource is
      // still the available one).
      for (let i = 0; i < DURING; i++) await send(i % 2 === 0 ? aliceFull : 'alice@localhost', `during ${i}`);
      // Each one is delivered (into the hibernating session's queue) right after its archive
      // write, which send() waited for: a moment more and all are queued.
      await sleep(100);

      slix.tell('resume');
      const resumed = await slix.next('resumed');
      assert.equal(resumed.previd, smId, 'resumed the session it had enabled (previd)');
      assert.equal(resumed.h, '2', "<resumed h=''/>: the server handled slixmpp's presence and roster request");
      assert.equal(resumed.jid, aliceFull, 'same full JID');
      // slixmpp's <resume h='5'/> acknowledged everything before the loss: only what came
      // while it was gone goes out again.
      const resumedLog = await logEntry(logs, 'session resumed', { jid: aliceFull });
      assert.equal(resumedLog.retransmitted, DURING, `retransmitted after <resumed/>: ${JSON.stringify(resumedLog)}`);

      for (let i = 0; i < AFTER; i++) await send(i % 2 === 0 ? aliceFull : 'alice@localhost', `after ${i}`);
      // What slixmpp sends on the resumed stream gets through too.
      await bob.expect(`<message from='${aliceFull}' type='chat'><body>back after resuming</body></message>`, { skip: true, timeout: 15_000 });
      const done = await slix.next('done');
      await slix.finished();
      await until("the server has ended slixmpp's session", async () => server.server.router.sessions.size === 1);

      const expected = [
        ...Array.from({ length: BEFORE }, (_, i) => `before ${i}`),
        ...Array.from({ length: DURING }, (_, i) => `during ${i}`),
        ...Array.from({ length: AFTER }, (_, i) => `after ${i}`),
      ];
      const received = done.received as Record<string, unknown>[];
      assert.deepEqual(received.map((m) => m.body), expected, 'every message exactly once, in order');
      for (const message of received) assert.equal(message.from, 'bob@clinic.test/pager');
      const events = done.events as Record<string, number>;
      assert.equal(events.sm_enabled, 1, `enabled once: ${JSON.stringify(events)}`);
      assert.equal(events.session_resumed, 1, `resumed once: ${JSON.stringify(events)}`);
      assert.equal(events.session_start, 1, `no second session (no new bind): ${JSON.stringify(events)}`);
      assert.equal(events.sm_failed, undefined, `no <failed/>: ${JSON.stringify(events)}`);
      assert.equal(events.session_end, undefined, `the session never ended: ${JSON.stringify(events)}`);
      assert.equal(events.disconnected, 1, `one connection lost: ${JSON.stringify(events)}`);
      // Its final <a/> before </stream:stream> acknowledged everything: nothing is left over.
      assert.ok(!logs.some((line) => line.includes('session not resumed in time') || line.includes('undelivered stanzas handed over')),
        `nothing went to offline storage:\n${logs.join('\n')}`);
      assert.equal(await server.server.storage.offline.count(ALICE), 0, 'nothing in offline storage');
      assertNoBounces(bob);
    } finally {
      slix?.stop();
      await server.stop();
    }
  });

  it('enables XEP-0280 carbons with its plugin: <received/> and <sent/> copies from the bare JID, none with <private/> + <no-copy/>, none once disabled', { timeout: 30_000 }, async () => {
    const server = await startTestServer({ hosts: ['localhost', 'clinic.test'] });
    let slix: SlixmppRun | undefined;
    try {
      await server.addUser('alice', 'alice-secret');
      await server.addUser('bob@clinic.test', 'bob-secret');
      const cafile = path.join(server.dataDir, 'ca.pem');
      await writeFile(cafile, server.certificate);
      const SLIX = 'alice@localhost/slix';
      const NS_CARBONS = 'urn:xmpp:carbons:2';
      const PRIVATE = `<private xmlns='${NS_CARBONS}'/><no-copy xmlns='urn:xmpp:hints'/>`;
      const bob = await server.login('bob@clinic.test', 'bob-secret', { resource: 'pager' });
      // alice's other resource, without carbons, above slixmpp's priority (0): it alone gets
      // what comes for alice's bare JID.
      const desk = await server.login('alice', 'alice-secret', { resource: 'desk' });
      desk.send('<presence><priority>5</priority></presence>');
      await desk.expect(`<presence from='${desk.jid}'/>`, { skip: true });

      slix = new SlixmppRun(['carbons', SLIX, 'alice-secret', String(server.port('starttls')), cafile, bob.jid!]);
      const ready = await slix.next('ready');
      assert.deepEqual(ready, { event: 'ready', jid: SLIX, advertised: true, enabled: 'result' },
        'the server advertises urn:xmpp:carbons:2 and answers the plugin\'s <enable/>');
      const run = slix;
      // slixmpp's presence reached the desk (so did the desk's own, before): from now on the
      // desk and bob get only what each step below expects, in order.
      await desk.expect(`<presence from='${SLIX}'/>`, { skip: true });

      /** `sender` sends a chat message (`extra`: XML after the body), and `recipient` gets it as sent, next. */
      const chat = async (sender: ScriptedClient, recipient: ScriptedClient, to: string, id: string, body: string, extra = '') => {
        sender.send(`<message to='${to}' type='chat' id='${id}'><body>${body}</body>${extra}</message>`);
        await recipient.expect(`<message from='${sender.jid}' to='${to}' type='chat' id='${id}'><body>${body}</body>${extra}</message>`);
        return { from: sender.jid!, to, type: 'chat', id, body };
      };
      /**
       * slixmpp's next event is this carbon: a chat from alice's bare JID to slixmpp's resource,
       * the original forwarded as is.
       */
      const carbon = async (kind: 'carbon_received' | 'carbon_sent', forwarded: Record<string, string>) => {
        const event = await run.next(kind);
        assert.deepEqual(event, { event: kind, from: 'alice@localhost', to: SLIX, type: 'chat', forwarded }, `${kind} of '${forwarded.body}'`);
      };
      /** `sender` sends slixmpp a chat message: its next event is that message (no copy of anything before it). */
      const toSlix = async (sender: ScriptedClient, id: string, body: string) => {
        sender.send(`<message to='${SLIX}' type='chat' id='${id}'><body>${body}</body></message>`);
        assert.deepEqual(await run.next('message'), { event: 'message', from: sender.jid, to: SLIX, type: 'chat', id, body }, `message '${body}'`);
      };

      // (1) <received/>: for another resource of alice's, by full JID, then by bare JID.
      await carbon('carbon_received', await chat(bob, desk, desk.jid!, 'r1', 'to the desk'));
      await carbon('carbon_received', await chat(bob, desk, 'alice@localhost', 'r2', 'to the bare JID'));
      // (2) <sent/>: what the other resource sends.
      await carbon('carbon_sent', await chat(desk, bob, bob.jid!, 's1', 'from the desk'));
      // (3) No copy of a private message either way: each sender's next message (handled in
      // order after it, on the same stream) is the next copy slixmpp sees.
      await chat(desk, bob, bob.jid!, 'p1', 'private from the desk', PRIVATE);
      await carbon('carbon_sent', await chat(desk, bob, bob.jid!, 's2', 'after the private one'));
      await chat(bob, desk, desk.jid!, 'p2', 'private to the desk', PRIVATE);
      await chat(bob, desk, 'alice@localhost', 'p3', 'private to the bare JID', PRIVATE);
      await carbon('carbon_received', await chat(bob, desk, desk.jid!, 'r3', 'after the private ones'));

      // Disabled with the plugin: no copies; the next thing slixmpp sees from each sender is a
      // message sent to it after the one that would have been copied.
      run.tell('disable');
      assert.deepEqual(await run.next('disabled'), { event: 'disabled', type: 'result' });
      await chat(bob, desk, desk.jid!, 'r4', 'to the desk, carbons off');
      await chat(bob, desk, 'alice@localhost', 'r5', 'to the bare JID, carbons off');
      await toSlix(bob, 'm1', 'bob to slixmpp');
      await chat(desk, bob, bob.jid!, 's3', 'from the desk, carbons off');
      await toSlix(desk, 'm2', 'desk to slixmpp');

      // What slixmpp sends with its own <private/> (and <no-copy/>) is not copied to the desk,
      // which now enables carbons: its next element is the copy of the plain message after it.
      const on = await desk.iq(`<iq type='set' id='carbons-on'><enable xmlns='${NS_CARBONS}'/></iq>`);
      assert.equal(on.attrs.type, 'result', on.toString());
      run.tell('send');
      await run.next('sent');
      await bob.expect(`<message from='${SLIX}' to='${bob.jid}' type='chat' id='slix-private'><body>private from slixmpp</body>${PRIVATE}</message>`);
      await bob.expect(`<message from='${SLIX}' to='${bob.jid}' type='chat' id='slix-plain'><body>copied from slixmpp</body></message>`);
      await desk.expect(`<message from='alice@localhost' to='${desk.jid}' type='chat'><sent xmlns='${NS_CARBONS}'><forwarded xmlns='urn:xmpp:forward:0'>`
        + `<message xmlns='jabber:client' from='${SLIX}' to='${bob.jid}' type='chat' id='slix-plain'><body>copied from slixmpp</body></message></forwarded></sent></message>`);

      run.tell('done');
      const done = await run.next('done');
      await run.finished();
      assert.equal(done.jid, SLIX);
      // Then the desk sees slixmpp go, and nothing else came to either.
      await desk.expect(`<presence type='unavailable' from='${SLIX}'/>`);
      await Promise.all([bob.expectNothing(100), desk.expectNothing(100)]);
    } finally {
      slix?.stop();
      await server.stop();
    }
  });
});
