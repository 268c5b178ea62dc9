/**
 * XEP-0012 last activity: server uptime; for accounts, answered by the server to the user and
 * to those who receive the account's presence (0 while online, else the time since the last
 * session ended with its unavailable status), <forbidden/> to everyone else; IQs to a full
 * JID reach the client only for the same people.
 */
import { strict as assert } from 'node:assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { type ScriptedClient, type TestServer, startTestServer } from '../support/index.ts';
import type { LastActivity } from '../../src/storage/types.ts';
import { assertExact, iqError } from './exact.ts';

const NS = 'jabber:iq:last';
const PW = 'a-long-password';
const host = 'localhost';

describe('XEP-0012 last activity', () => {
  let server: TestServer;
  let alice: ScriptedClient;
  let carol: ScriptedClient;
  let dave: ScriptedClient;
  const last = (id: string, to?: string, type = 'get') => `<iq type='${type}' id='${id}'${to === undefined ? '' : ` to='${to}'`}><query xmlns='${NS}'/></iq>`;
  const forbidden = (id: string, from: string, to: string) => iqError({ id, from, to, type: 'auth', condition: 'forbidden' });
  const ref = (username: string) => ({ username, domain: host });

  /** The stored record once it differs from `previous` (the write follows the session's end). */
  async function recorded(username: string, previous?: LastActivity): Promise<LastActivity> {
    for (let i = 0; i < 100; i++) {
      const activity = await server.server.storage.lastActivity.get(ref(username));
      if (activity !== undefined && JSON.stringify(activity) !== JSON.stringify(previous)) return activity;
      await sleep(20);
    }
    throw new Error(`no last activity recorded for ${username}`);
  }

  before(async () => {
    server = await startTestServer({
      toml: '[[listen.c2s]]\nport = 0\naddress = "127.0.0.1"\nmax_connections_per_address = 1000\n',
      listeners: ['starttls'],
    });
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) await server.addUser(name, PW);
    // Alice receives Bob's and Erin's presence; Dave is on Bob's roster without receiving it.
    const item = (jid: string, subscription: 'from' | 'to' | 'both') => ({ jid, subscription, askOut: false, askIn: false, groups: [] });
    await server.server.storage.roster.put(ref('bob'), item(`alice@${host}`, 'from'));
    await server.server.storage.roster.put(ref('bob'), item(`dave@${host}`, 'to'));
    await server.server.storage.roster.put(ref('erin'), item(`alice@${host}`, 'both'));
    alice = await server.login('alice', PW, { resource: 'desk' });
    carol = await server.login('carol', PW, { resource: 'home' });
    dave = await server.login('dave', PW, { resource: 'work' });
  });
  after(() => server.stop());

  it('gives the server\'s uptime in seconds, without text (§5)', async () => {
    const reply = await alice.iq(last('l1', host));
    assertExact(reply, `<iq type='result' id='l1' from='${host}' to='${alice.jid}'><query xmlns='${NS}' seconds='{{any}}'/></iq>`);
    const seconds = Number(reply.getChild('query', NS)!.attrs.seconds);
    // The server started in this process.
    assert.ok(Number.isInteger(seconds) && seconds >= 0 && seconds <= Math.ceil(process.uptime()), `uptime ${seconds}`);
  });

  it('is advertised for the server and for accounts', () => {
    const hostInfo = server.server.router.hosts.get(host)!;
    assert.ok(hostInfo.discoInfo('host').features.includes(NS));
    assert.ok(hostInfo.discoInfo('account').features.includes(NS));
  });

  it('says 0 seconds for an account with a connected resource, to the user and to those who see its presence', async () => {
    const bob = await server.login('bob', PW, { resource: 'phone' });
    try {
      const zero = (id: string, to: string) => `<iq type='result' id='${id}' from='bob@${host}' to='${to}'><query xmlns='${NS}' seconds='0'/></iq>`;
      assertExact(await alice.iq(last('l2', `bob@${host}`)), zero('l2', alice.jid!));
      assertExact(await bob.iq(last('l3', `bob@${host}`)), zero('l3', bob.jid!));
      assertExact(await bob.iq(last('l4')), `<iq type='result' id='l4' to='${bob.jid}'><query xmlns='${NS}' seconds='0'/></iq>`);
    } finally {
      await bob.close();
    }
    await recorded('bob');
  });

  it('records the end of the last session with the status of its unavailable presence', async () => {
    const before = await server.server.storage.lastActivity.get(ref('bob'));
    const phone = await server.login('bob', PW, { resource: 'phone' });
    const laptop = await server.login('bob', PW, { resource: 'laptop' });
    phone.send('<presence/>');
    phone.send('<presence type=\'unavailable\'><status>Heading Home</status></presence>');
    await phone.close();
    await sleep(100);
    // Another session is still open: nothing recorded yet, and Bob is online.
    assert.deepEqual(await server.server.storage.lastActivity.get(ref('bob')), before);
    assertExact(await alice.iq(last('l5', `bob@${host}`)), `<iq type='result' id='l5' from='bob@${host}' to='${alice.jid}'><query xmlns='${NS}' seconds='0'/></iq>`);
    laptop.send('<presence><status>Around</status></presence>');
    laptop.send('<presence type=\'unavailable\'><status>In surgery</status></presence>');
    const t = Math.floor(Date.now() / 1000);
    await laptop.close();
    const activity = await recorded('bob', before);
    assert.equal(activity.status, 'In surgery');
    assert.ok(Math.abs(activity.timestamp - t) <= 2, `timestamp ${activity.timestamp} is now`);
    const reply = await alice.iq(last('l6', `bob@${host}`));
    assertExact(reply, `<iq type='result' id='l6' from='bob@${host}' to='${alice.jid}'><query xmlns='${NS}' seconds='{{any}}'>In surgery</query></iq>`);
    assert.ok(Number(reply.getChild('query', NS)!.attrs.seconds) <= 3);
  });

  it('answers the seconds since the recorded logout and its status', async () => {
    const timestamp = Math.floor(Date.now() / 1000) - 903;
    await server.server.storage.lastActivity.set(ref('bob'), { timestamp, status: 'Heading Home' });
    const reply = await alice.iq(last('l7', `bob@${host}`));
    assertExact(reply, `<iq type='result' id='l7' from='bob@${host}' to='${alice.jid}'><query xmlns='${NS}' seconds='{{any}}'>Heading Home</query></iq>`);
    const seconds = Number(reply.getChild('query', NS)!.attrs.seconds);
    assert.ok(seconds >= 903 && seconds <= 905, `seconds=${seconds}`);
    // An empty status gives an empty query.
    await server.server.storage.lastActivity.set(ref('bob'), { timestamp, status: '' });
    assertExact(await alice.iq(last('l8', `bob@${host}`)), `<iq type='result' id='l8' from='bob@${host}' to='${alice.jid}'><query xmlns='${NS}' seconds='{{any}}'/></iq>`);
  });

  it('refuses strangers, contacts without presence access, and requests about unknown accounts with <forbidden/> (§3, §8)', async () => {
    assertExact(await carol.iq(last('l9', `bob@${host}`)), forbidden('l9', `bob@${host}`, carol.jid!));
    assertExact(await dave.iq(last('l10', `bob@${host}`)), forbidden('l10', `bob@${host}`, dave.jid!));
    assertExact(await alice.iq(last('l11', `nobody@${host}`)), forbidden('l11', `nobody@${host}`, alice.jid!));
  });

  it('answers <item-not-found/> when an account never logged out', async () => {
    const reply = await alice.iq(last('l12', `erin@${host}`));
    assertExact(reply, iqError({ id: 'l12', from: `erin@${host}`, to: alice.jid, type: 'cancel', condition: 'item-not-found', text: 'no activity recorded' }));
  });

  it('delivers a query to a full JID only from those who see the presence (§4)', async () => {
    const bob = await server.login('bob', PW, { resource: 'tablet' });
    try {
      alice.send(last('l13', bob.jid));
      await bob.expect(`<iq type='get' id='l13' from='${alice.jid}' to='${bob.jid}'><query xmlns='${NS}'/></iq>`);
      bob.send(`<iq type='result' id='l13' to='${alice.jid}'><query xmlns='${NS}' seconds='123'/></iq>`);
      assertExact(await alice.expect(`<iq id='l13'/>`), `<iq type='result' id='l13' from='${bob.jid}' to='${alice.jid}'><query xmlns='${NS}' seconds='123'/></iq>`);

      assertExact(await carol.iq(last('l14', bob.jid)), forbidden('l14', bob.jid!, carol.jid!));
      assertExact(await dave.iq(last('l15', bob.jid)), forbidden('l15', bob.jid!, dave.jid!));
      assertExact(await carol.iq(last('l16', `bob@${host}/elsewhere`)), forbidden('l16', `bob@${host}/elsewhere`, carol.jid!));
      await bob.expectNothing(100);
      // Allowed, but no such resource: the usual answer.
      const reply = await alice.iq(last('l17', `bob@${host}/elsewhere`));
      assertExact(reply, iqError({ id: 'l17', from: `bob@${host}/elsewhere`, to: alice.jid, type: 'cancel', condition: 'service-unavailable' }));
    } finally {
      await bob.close();
    }
  });

  it('answers an IQ set with <service-unavailable/>', async () => {
    for (const [id, to] of [['l18', host], ['l19', `bob@${host}`]]) {
      assertExact(await alice.iq(last(id, to, 'set')), iqError({ id, from: to, to: alice.jid, type: 'cancel', condition: 'service-unavailable' }));
    }
  });
});
