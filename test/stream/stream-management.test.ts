/**
 * XEP-0198 stream management: the counter arithmetic (wrapping at 2^32), then a real server:
 * acknowledgements both ways over hundreds of stanzas, the server's own <r/>, resumption after
 * a dropped connection and over a half-open one with every message arriving exactly once,
 * failed resumptions, and the end of a session that is not resumed (in time) or never acks:
 * nothing is lost, its messages wait in offline storage with their delay.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Element } from 'ltx';
import {
  connectXmppJs, NS_STREAM_ERRORS, startTestServer, xml, type ScriptedClient, type TestServer,
} from '../support/index.ts';
import { H_MODULUS, hDistance, nextH, parseH, UnackedQueue } from '../../src/stream/stream-management.ts';
import { ResumableSessions } from '../../src/stream/resumption.ts';
import { openStorage } from '../../src/storage/index.ts';
import { storageOptions } from '../../src/config/load.ts';
import { pino } from 'pino';

const NS = 'urn:xmpp:sm:3';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const NS_DELAY = 'urn:xmpp:delay';

describe('stream management counters', () => {
  it('increments h and wraps from 2^32-1 to 0', () => {
    assert.equal(nextH(0), 1);
    assert.equal(nextH(H_MODULUS - 2), H_MODULUS - 1);
    assert.equal(nextH(H_MODULUS - 1), 0);
  });

  it('measures distances across the wrap', () => {
    assert.equal(hDistance(5, 5), 0);
    assert.equal(hDistance(5, 9), 4);
    assert.equal(hDistance(H_MODULUS - 2, 1), 3);
    assert.equal(hDistance(1, 0), H_MODULUS - 1, 'going backwards is a (too) long way forward');
  });

  it('parses h as an xs:unsignedInt only', () => {
    assert.equal(parseH('0'), 0);
    assert.equal(parseH('+42'), 42);
    assert.equal(parseH('007'), 7);
    assert.equal(parseH(String(H_MODULUS - 1)), H_MODULUS - 1);
    for (const bad of [undefined, '', '-1', '1.5', '1e3', ' 1', String(H_MODULUS), '99999999999999999999999']) {
      assert.equal(parseH(bad), undefined, String(bad));
    }
  });

  it('acknowledges queued stanzas across the wrap, and refuses an h beyond what was sent', () => {
    const queue = new UnackedQueue(H_MODULUS - 3);
    for (let i = 0; i < 6; i++) queue.push({ xml: `<m${i}/>`, queuedAt: i });
    assert.equal(queue.sendCount, 3, 'six stanzas after 2^32-3');
    assert.equal(queue.acked, H_MODULUS - 3);
    assert.equal(queue.ack(H_MODULUS - 1), 2);
    assert.deepEqual(queue.pending().map((e) => e.xml), ['<m2/>', '<m3/>', '<m4/>', '<m5/>']);
    assert.equal(queue.ack(H_MODULUS - 1), 0, 'the same h again acknowledges nothing new');
    assert.equal(queue.ack(0), 1, 'across the wrap');
    assert.equal(queue.canAck(3), true);
    assert.equal(queue.canAck(4), false);
    assert.equal(queue.ack(4), undefined, 'more than was sent');
    assert.equal(queue.ack(H_MODULUS - 2), undefined, 'backwards');
    assert.equal(queue.length, 3, 'a refused h changes nothing');
    assert.equal(queue.ack(3), 3);
    assert.equal(queue.length, 0);
    assert.equal(queue.acked, 3);
  });

  it('remembers ended sessions for their owner only', () => {
    const registry = new ResumableSessions<string>();
    const id = registry.newId();
    registry.add(id, 'alice@localhost', 'session');
    assert.deepEqual(registry.lookup(id, 'alice@localhost'), { session: 'session' });
    assert.equal(registry.lookup(id, 'mallory@localhost'), undefined);
    registry.end(id, 17);
    assert.deepEqual(registry.lookup(id, 'alice@localhost'), { ended: 17 });
    assert.equal(registry.lookup(id, 'mallory@localhost'), undefined);
    assert.equal(registry.lookup(id, 'alice@localhost', Date.now() + 2 * 60 * 60 * 1000), undefined, 'forgotten after an hour');
  });
});

// --- helpers for scripted clients -----------------------------------------------------------

const isR = (e: Element) => e.getName() === 'r' && e.getNS() === NS;
const isStanza = (e: Element) => ['message', 'presence', 'iq'].includes(e.getName());

/** The next `count` stanzas, skipping (and counting) the server's <r/>; anything else fails. */
async function stanzas(client: ScriptedClient, count: number): Promise<{ received: Element[]; requests: number; sequence: string[] }> {
  const received: Element[] = [];
  const sequence: string[] = [];
  let requests = 0;
  while (received.length < count) {
    const element = await client.next();
    if (isR(element)) {
      requests++;
      sequence.push('r');
    } else if (isStanza(element)) {
      received.push(element);
      sequence.push(element.getName());
    } else {
      throw client.failure(`unexpected ${element.toString()}`);
    }
  }
  return { received, requests, sequence };
}

/** Nothing but the server's <r/> arrives for `ms`. */
async function onlyRequests(client: ScriptedClient, ms = 300): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  const other = client.clear().filter((e) => !isR(e));
  if (other.length > 0) throw client.failure(`expected nothing but <r/>, received ${other[0].toString()}`);
}

async function enable(client: ScriptedClient, resume: boolean): Promise<string | undefined> {
  client.send(`<enable xmlns='${NS}'${resume ? " resume='true'" : ''}/>`);
  const enabled = await client.expect(`<enabled xmlns='${NS}'/>`);
  return enabled.attrs.id as string | undefined;
}

const ids = (elements: Element[]) => elements.map((e) => e.attrs.id as string);
const range = (prefix: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

/**
 * Fresh accounts (so sessions left hibernating by one test never meet another) and logins,
 * on the server a describe block starts.
 */
function accounts(current: () => TestServer) {
  let users = 0;
  return {
    async user(prefix: string): Promise<string> {
      const name = `${prefix}${++users}`;
      await current().addUser(name, `${name}-secret`);
      return name;
    },
    login(name: string, resource: string): Promise<ScriptedClient> {
      return current().login(name, `${name}-secret`, { resource, name: `${name}/${resource}` });
    },
  };
}

describe('stream management (XEP-0198)', () => {
  let server: TestServer;
  const { user, login } = accounts(() => server);
  /** A new connection of `name`, authenticated and not bound, that asks to resume. */
  async function resume(name: string, previd: string, h: number): Promise<{ client: ScriptedClient; answer: Element }> {
    const client = await server.connect({ name: `${name} (resuming)` });
    await client.login(name, `${name}-secret`);
    client.send(`<resume xmlns='${NS}' previd='${previd}' h='${h}'/>`);
    return { client, answer: await client.next() };
  }

  before(async () => {
    server = await startTestServer({
      toml: `
        [stream_management]
        ack_request_stanzas = 5
        ack_request_delay = 0.5
      `,
    });
  });
  after(() => server?.stop());

  it('is offered after authentication, not before', async () => {
    const name = await user('feature');
    const client = await server.connect();
    assert.equal(client.features().getChild('sm', NS), undefined);
    await client.login(name, `${name}-secret`);
    assert.ok(client.features().getChild('sm', NS), client.features().toString());
    client.destroy();
  });

  it('enables after binding only, once, with resumption and its maximum when asked', async () => {
    const name = await user('enable');
    const client = await server.connect({ name });
    await client.login(name, `${name}-secret`);
    client.send(`<enable xmlns='${NS}'/>`);
    await client.expect(`<failed xmlns='${NS}'><unexpected-request xmlns='${NS_STANZAS}'/></failed>`);
    await client.bind('phone');
    client.send(`<enable xmlns='${NS}' resume='true'/>`);
    const enabled = await client.expect(`<enabled xmlns='${NS}' resume='true' max='300'/>`);
    const id = enabled.attrs.id as string | undefined;
    assert.ok(id !== undefined && id.length >= 16, 'an unguessable SM-ID');
    client.send(`<enable xmlns='${NS}'/>`);
    await client.expect(`<failed xmlns='${NS}'><unexpected-request xmlns='${NS_STANZAS}'/></failed>`);
    // Still a working stream.
    await client.iq("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    client.destroy();

    const other = await login(await user('enable'), 'desk');
    assert.equal(await enable(other, false), undefined, 'no SM-ID without resumption');
    other.send(`<enable xmlns='${NS}' resume='1' max='60'/>`);
    await other.expect(`<failed xmlns='${NS}'><unexpected-request xmlns='${NS_STANZAS}'/></failed>`);
    const third = await login(await user('enable'), 'desk');
    third.send(`<enable xmlns='${NS}' resume='1' max='60'/>`);
    await third.expect(`<enabled xmlns='${NS}' resume='true' max='60'/>`);
    await other.close();
    await third.close();
  });

  it('counts the client\'s stanzas, not its nonzas, and answers <r/> with that h', async () => {
    const alice = await login(await user('count'), 'phone');
    const bobName = await user('count');
    const bob = await login(bobName, 'desk');
    await enable(alice, false);
    alice.send(`<r xmlns='${NS}'/>`);
    await alice.expect(`<a xmlns='${NS}' h='0'/>`);
    let batch = '';
    for (let i = 1; i <= 100; i++) batch += `<message to='${bobName}@localhost/desk' type='chat' id='c${i}'><body>${i}</body></message>`;
    alice.send(batch + `<r xmlns='${NS}'/>`);
    await alice.expect(`<a xmlns='${NS}' h='100'/>`);
    // An IQ, a presence and nonzas (an ack, client state indication) in between.
    batch = `<iq type='get' id='ping' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq><a xmlns='${NS}' h='0'/><inactive xmlns='urn:xmpp:csi:0'/><active xmlns='urn:xmpp:csi:0'/>`;
    batch += `<presence to='${bobName}@localhost/desk' type='unavailable'/>`;
    for (let i = 101; i <= 300; i++) batch += `<message to='${bobName}@localhost/desk' type='chat' id='c${i}'><body>${i}</body></message>`;
    alice.send(batch + `<r xmlns='${NS}'/>`);
    await alice.expect("<iq type='result' id='ping'/>");
    await alice.expect(`<a xmlns='${NS}' h='302'/>`, { skip: true });
    const { received } = await stanzas(bob, 301);
    assert.deepEqual(ids(received.filter((e) => e.getName() === 'message')), range('c', 1, 300));
    await alice.close();
    await bob.close();
  });

  it('requests an ack after 5 stanzas or 0.5 s, one at a time, drops what the client acknowledges, and refuses an h too high', async () => {
    const aliceName = await user('acks');
    const alice = await login(aliceName, 'phone');
    const bob = await login(await user('acks'), 'desk');
    await enable(alice, true);
    const to = `${aliceName}@localhost/phone`;
    let batch = '';
    for (let i = 1; i <= 300; i++) batch += `<message to='${to}' type='chat' id='s${i}'><body>${i}</body></message>`;
    bob.send(batch);
    const { received, requests, sequence } = await stanzas(alice, 300);
    assert.deepEqual(ids(received), range('s', 1, 300));
    // Unanswered, the first request is the only one the count makes: the timer asks again.
    assert.equal(requests, 1, 'one <r/>, after the fifth stanza');
    assert.deepEqual(sequence, [...Array(5).fill('message'), 'r', ...Array(295).fill('message')]);
    await alice.expect(`<r xmlns='${NS}'/>`);
    alice.send(`<a xmlns='${NS}' h='300'/><r xmlns='${NS}'/>`);
    await alice.expect(`<a xmlns='${NS}' h='0'/>`); // the server has read the answer

    // Answered, the count asks again after the next five.
    batch = '';
    for (let i = 301; i <= 306; i++) batch += `<message to='${to}' type='chat' id='s${i}'/>`;
    bob.send(batch);
    const next = await stanzas(alice, 6);
    assert.deepEqual(next.sequence, [...Array(5).fill('message'), 'r', 'message']);
    alice.send(`<a xmlns='${NS}' h='306'/>`);

    bob.send(`<message to='${to}' type='chat' id='s307'/><message to='${to}' type='chat' id='s308'/>`);
    await stanzas(alice, 2);
    const sent = performance.now();
    await alice.expect(`<r xmlns='${NS}'/>`);
    assert.ok(performance.now() - sent >= 200, 'the timer, not the count, asked');
    alice.send(`<a xmlns='${NS}' h='308'/>`);
    await alice.expectNothing(700);

    alice.send(`<a xmlns='${NS}' h='309'/>`);
    await alice.expect(`<stream:error><undefined-condition xmlns='${NS_STREAM_ERRORS}'/><handled-count-too-high xmlns='${NS}' h='309' send-count='308'/></stream:error>`);
    await alice.expectClosed();
    await bob.close();
  });

  it('resumes after the connection dies mid-flow: every message arrives exactly once, same full JID', async () => {
    const aliceName = await user('resume');
    const bobName = await user('resume');
    const alice = await login(aliceName, 'phone');
    const bob = await login(bobName, 'desk');
    const previd = (await enable(alice, true))!;
    // Three stanzas from Alice, so the server's h is 3.
    for (let i = 1; i <= 3; i++) alice.send(`<message to='${bobName}@localhost/desk' type='chat' id='a${i}'><body>${i}</body></message>`);
    await stanzas(bob, 3);

    let batch = '';
    for (let i = 1; i <= 60; i++) batch += `<message to='${aliceName}@localhost/phone' type='chat' id='m${i}'><body>message ${i}</body></message>`;
    bob.send(batch);
    const first = await stanzas(alice, 20);
    alice.send(`<a xmlns='${NS}' h='10'/>`);
    alice.destroy(); // whatever else was on its way is lost with the connection
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 61; i <= 70; i++) bob.send(`<message to='${aliceName}@localhost/phone' type='chat' id='m${i}'><body>message ${i}</body></message>`);
    await bob.expectNothing(200); // no error: the session is still there

    const { client: phone, answer } = await resume(aliceName, previd, 20);
    assert.equal(answer.toString(), `<resumed xmlns="${NS}" h="3" previd="${previd}"/>`);
    const rest = await stanzas(phone, 50);
    assert.deepEqual(ids([...first.received, ...rest.received]), range('m', 1, 70));
    assert.ok(rest.received.every((m) => m.attrs.to === `${aliceName}@localhost/phone`));
    phone.send(`<a xmlns='${NS}' h='70'/>`);
    await onlyRequests(phone);

    // The resumed stream is the same session: same full JID both ways, counters carried on.
    bob.send(`<message to='${aliceName}@localhost/phone' type='chat' id='m71'><body>still there?</body></message>`);
    await phone.expect("<message id='m71'/>", { skip: true });
    phone.send(`<message to='${bobName}@localhost/desk' type='chat' id='a4'><body>yes</body></message><r xmlns='${NS}'/>`);
    await bob.expect(`<message from='${aliceName}@localhost/phone' id='a4'/>`);
    await phone.expect(`<a xmlns='${NS}' h='4'/>`, { skip: true });
    await phone.close();
    await bob.close();
  });

  it('takes over a session whose old connection still looks open, closing that one with <conflict/>', async () => {
    const aliceName = await user('halfopen');
    const alice = await login(aliceName, 'tablet');
    const bob = await login(await user('halfopen'), 'desk');
    const previd = (await enable(alice, true))!;
    for (let i = 1; i <= 3; i++) bob.send(`<message to='${aliceName}@localhost/tablet' type='chat' id='h${i}'><body>${i}</body></message>`);
    await stanzas(alice, 3);

    const { client: tablet, answer } = await resume(aliceName, previd, 1);
    assert.equal(answer.getName(), 'resumed', answer.toString());
    assert.equal(answer.attrs.h, '0');
    const again = await stanzas(tablet, 2);
    assert.deepEqual(ids(again.received), ['h2', 'h3']);
    await alice.expectStreamError('conflict', { skip: true });

    bob.send(`<message to='${aliceName}@localhost/tablet' type='chat' id='h4'><body>4</body></message>`);
    await tablet.expect("<message id='h4'/>", { skip: true });
    await tablet.close();
    await bob.close();
  });

  it('answers <resumed/> only once what the old connection sent is handled, and before anything else', async () => {
    const aliceName = await user('busy');
    const away = await user('busy'); // offline: each message waits for a storage write
    const alice = await login(aliceName, 'phone');
    const previd = (await enable(alice, true))!;
    let batch = '';
    for (let i = 1; i <= 200; i++) batch += `<message to='${away}@localhost' type='chat' id='w${i}'><body>${i}</body></message>`;
    alice.send(batch + "<iq type='get' id='late' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    const { client: phone, answer } = await resume(aliceName, previd, 0);
    assert.equal(answer.toString(), `<resumed xmlns="${NS}" h="201" previd="${previd}"/>`);
    await phone.expect("<iq type='result' id='late'/>");
    await alice.expectStreamError('conflict', { skip: true });
    await phone.close();
  });

  it('fails to resume an unknown or foreign SM-ID with <item-not-found/>, and the client can still bind', async () => {
    const aliceName = await user('badid');
    const { client, answer } = await resume(aliceName, 'no-such-session', 0);
    assert.equal(answer.toString(), `<failed xmlns="${NS}"><item-not-found xmlns="${NS_STANZAS}"/></failed>`);
    await client.bind('phone');
    const previd = (await enable(client, true))!;

    // Someone else's session: the same answer, no h that would reveal it.
    const mallory = await user('badid');
    const foreign = await resume(mallory, previd, 0);
    assert.equal(foreign.answer.toString(), `<failed xmlns="${NS}"><item-not-found xmlns="${NS_STANZAS}"/></failed>`);
    foreign.client.destroy();

    // A bound stream cannot resume.
    client.send(`<resume xmlns='${NS}' previd='${previd}' h='0'/>`);
    await client.expect(`<failed xmlns='${NS}'><unexpected-request xmlns='${NS_STANZAS}'/></failed>`);

    // An h beyond what the session sent ends the resuming stream, not the session.
    const tooHigh = await resume(aliceName, previd, 5);
    assert.equal(tooHigh.answer.getName(), 'error', tooHigh.answer.toString());
    assert.ok(tooHigh.answer.getChild('handled-count-too-high', NS));
    await tooHigh.client.expectClosed();
    await client.iq("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await client.close();
  });

  it('resumes with @xmpp/client, which re-sends nothing it has handled', async () => {
    const aliceName = await user('xmppjs');
    const bob = await login(await user('xmppjs'), 'desk');
    const alice = await connectXmppJs({ port: server.port(), domain: 'localhost', username: aliceName, password: `${aliceName}-secret`, resource: 'js' });
    try {
      const sm = (alice.xmpp as unknown as { streamManagement: { enabled: boolean; id: string; on(event: string, fn: () => void): void } }).streamManagement;
      for (let i = 0; i < 50 && !sm.enabled; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.ok(sm.enabled && sm.id !== '', 'xmpp.js enabled stream management with resumption');
      for (let i = 1; i <= 3; i++) bob.send(`<message to='${alice.jid}' type='chat' id='j${i}'><body>${i}</body></message>`);
      for (let i = 1; i <= 3; i++) await alice.waitFor((s) => s.attrs.id === `j${i}`);

      const resumed = new Promise<void>((resolve) => sm.on('resumed', resolve));
      // Cut the TCP connection under xmpp.js (its socket wraps a node socket).
      const wrapper = (alice.xmpp as unknown as { socket: { socket?: { destroy(): void }; destroy?(): void } }).socket;
      (wrapper.socket ?? (wrapper as { destroy(): void })).destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (let i = 4; i <= 6; i++) bob.send(`<message to='${alice.jid}' type='chat' id='j${i}'><body>${i}</body></message>`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await (alice.xmpp as unknown as { reconnect: { reconnect(): Promise<void> } }).reconnect.reconnect();
      await resumed;
      for (let i = 4; i <= 6; i++) await alice.waitFor((s) => s.attrs.id === `j${i}`);
      await alice.send(xml('message', { to: bob.jid!, type: 'chat', id: 'back' }, xml('body', {}, 'back')));
      await bob.expect(`<message from='${alice.jid}' id='back'/>`, { skip: true });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const messages = alice.received.filter((s) => s.is('message')).map((s) => s.attrs.id as string);
      assert.deepEqual(messages, range('j', 1, 6));
    } finally {
      await alice.stop().catch(() => undefined);
      await bob.close();
    }
  });
});

describe('stream management: sessions that end', () => {
  let server: TestServer;
  const { user, login } = accounts(() => server);
  /** Comes online again, normally, and collects what offline storage delivers. */
  async function comeBack(name: string, count: number): Promise<Element[]> {
    const client = await login(name, 'again');
    client.send('<presence/>');
    const messages: Element[] = [];
    while (messages.length < count) {
      const element = await client.next();
      if (element.getName() === 'message') messages.push(element);
    }
    await client.expectNothing(300).catch((err: unknown) => {
      const extra = client.clear().filter((e) => e.getName() === 'message');
      if (extra.length > 0) throw err;
    });
    await client.close();
    return messages;
  }
  function delayOf(message: Element): Element {
    const delays = message.getChildren('delay', NS_DELAY).filter((d) => d.attrs.from === 'localhost');
    assert.equal(delays.length, 1, `one delay from the server: ${message.toString()}`);
    return delays[0];
  }

  before(async () => {
    server = await startTestServer({
      toml: `
        [stream_management]
        resume_timeout = 1
        max_unacked = 20
        ack_request_stanzas = 1000
        ack_request_delay = 3600
      `,
    });
  });
  after(() => server?.stop());

  it('ends a session not resumed in time: its contacts see it leave, IQs bounce, messages wait offline with their delay', async () => {
    const aliceName = await user('timeout');
    const bobName = await user('timeout');
    const ref = (username: string) => ({ username, domain: 'localhost' });
    await server.server.storage.roster.put(ref(aliceName), { jid: `${bobName}@localhost`, subscription: 'both', askOut: false, askIn: false, groups: [] });
    await server.server.storage.roster.put(ref(bobName), { jid: `${aliceName}@localhost`, subscription: 'both', askOut: false, askIn: false, groups: [] });
    const bob = await login(bobName, 'desk');
    bob.send('<presence/>');
    await bob.expect(`<presence from='${bobName}@localhost/desk'/>`, { skip: true });
    const alice = await login(aliceName, 'phone');
    const previd = (await enable(alice, true))!;
    alice.send('<presence/>');
    await bob.expect(`<presence from='${aliceName}@localhost/phone'/>`, { skip: true });
    await alice.expect(`<presence from='${bobName}@localhost/desk'/>`, { skip: true });

    const before = Date.now();
    for (let i = 1; i <= 3; i++) bob.send(`<message to='${aliceName}@localhost' type='chat' id='t${i}'><body>${i}</body></message>`);
    bob.send(`<iq type='get' id='v1' to='${aliceName}@localhost/phone'><query xmlns='jabber:iq:version'/></iq>`);
    await alice.expect("<iq id='v1'/>", { skip: true });
    alice.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 4; i <= 5; i++) bob.send(`<message to='${aliceName}@localhost/phone' type='chat' id='t${i}'><body>${i}</body></message>`);
    await bob.expectNothing(300); // still available while it may come back

    await bob.expect(`<iq type='error' id='v1' from='${aliceName}@localhost/phone'><error><service-unavailable xmlns='${NS_STANZAS}'/></error></iq>`, { timeout: 3000 });
    await bob.expect(`<presence type='unavailable' from='${aliceName}@localhost/phone'/>`);
    const expired = Date.now();

    const late = await server.connect({ name: `${aliceName} (late)` });
    await late.login(aliceName, `${aliceName}-secret`);
    late.send(`<resume xmlns='${NS}' previd='${previd}' h='0'/>`);
    await late.expect(`<failed xmlns='${NS}' h='1'><item-not-found xmlns='${NS_STANZAS}'/></failed>`);
    late.destroy();

    const messages = await comeBack(aliceName, 5);
    assert.deepEqual(ids(messages), range('t', 1, 5));
    for (const message of messages) {
      const stamp = Date.parse(delayOf(message).attrs.stamp as string);
      assert.ok(stamp >= before - 1000 && stamp <= expired, `${message.toString()} stamped when first queued`);
    }
    await bob.close();
  });

  it('moves what a client that never acks leaves queued to offline storage and closes it with <policy-violation/>', async () => {
    const aliceName = await user('noack');
    const alice = await login(aliceName, 'phone');
    const bob = await login(await user('noack'), 'desk');
    await enable(alice, true);
    let batch = '';
    for (let i = 1; i <= 25; i++) batch += `<message to='${aliceName}@localhost/phone' type='chat' id='k${i}'><body>${i}</body></message>`;
    bob.send(batch);
    const { received } = await stanzas(alice, 20);
    assert.deepEqual(ids(received), range('k', 1, 20));
    await alice.expectStreamError('policy-violation');
    await bob.expectNothing(200); // nothing bounced: the rest waits offline

    const messages = await comeBack(aliceName, 25);
    assert.deepEqual(ids(messages), range('k', 1, 25));
    for (const message of messages) delayOf(message);
    await bob.close();
  });

  it('without resumption, what was not acknowledged when the connection died waits offline', async () => {
    const aliceName = await user('noresume');
    const alice = await login(aliceName, 'phone');
    const bob = await login(await user('noresume'), 'desk');
    await enable(alice, false);
    for (let i = 1; i <= 3; i++) bob.send(`<message to='${aliceName}@localhost/phone' type='chat' id='n${i}'><body>${i}</body></message>`);
    await stanzas(alice, 3);
    alice.send(`<a xmlns='${NS}' h='1'/>`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    alice.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const messages = await comeBack(aliceName, 2);
    assert.deepEqual(ids(messages), ['n2', 'n3']);
    await bob.close();
  });

  it('on shutdown, a session waiting to be resumed hands its queue to offline storage first', async () => {
    const own = await startTestServer({ toml: '[stream_management]\nresume_timeout = 600' });
    try {
      await own.addUser('alice', 'alice-secret');
      await own.addUser('bob', 'bob-secret');
      const alice = await own.login('alice', 'alice-secret', { resource: 'phone' });
      const bob = await own.login('bob', 'bob-secret', { resource: 'desk' });
      await enable(alice, true);
      bob.send("<message to='alice@localhost/phone' type='chat' id='z1'><body>before</body></message>");
      await alice.expect("<message id='z1'/>");
      alice.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      bob.send("<message to='alice@localhost/phone' type='chat' id='z2'><body>while away</body></message>");
      await bob.expectNothing(200);
      await own.server.stop('test');
      // Read back from the database file the stopped server left.
      const storage = await openStorage(storageOptions(own.config), pino({ level: 'silent' }));
      try {
        const stored = await storage.offline.peek({ username: 'alice', domain: 'localhost' });
        assert.deepEqual(stored.map((m) => /id='(z[0-9])'/.exec(m.stanza)?.[1]), ['z1', 'z2']);
        assert.ok(stored.every((m) => m.stanza.includes(`xmlns='${NS_DELAY}'`)));
      } finally {
        await storage.close();
      }
    } finally {
      await own.stop();
    }
  });
});
