/**
 * RFC 6121 §2 roster management with scripted clients: get, set, update, remove, pushes to
 * every interested resource, versioning (§2.6 / XEP-0237) and the error cases of §2.3.3.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Element } from 'ltx';
import { startTestServer, type ScriptedClient, type TestServer, type TestUser } from '../support/index.ts';

const NS_ROSTER = 'jabber:iq:roster';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

let server: TestServer;
let counter = 0;

async function newUser(name = 'user'): Promise<TestUser> {
  return server.addUser(`${name}${++counter}`, 'secret');
}

async function connect(user: TestUser, resource: string): Promise<ScriptedClient> {
  return server.login(user.jid, user.password, { resource, name: `${user.username}/${resource}` });
}

async function rosterGet(client: ScriptedClient, ver?: string): Promise<Element> {
  const verAttr = ver === undefined ? '' : ` ver='${ver}'`;
  const result = await client.iq(`<iq type='get' id='${client.id('get')}'><query xmlns='${NS_ROSTER}'${verAttr}/></iq>`);
  assert.equal(result.attrs.type, 'result', result.toString());
  return result;
}

function set(client: ScriptedClient, item: string, id = client.id('set')): string {
  client.send(`<iq type='set' id='${id}'><query xmlns='${NS_ROSTER}'>${item}</query></iq>`);
  return id;
}

/** The exact items of a query element, rendered for comparison. */
function items(query: Element | undefined): string[] {
  return (query?.getChildren('item') ?? []).map((item) => {
    const groups = item.getChildren('group').map((g) => g.getText()).sort().join(',');
    return `${item.attrs.jid}|${item.attrs.name ?? ''}|${item.attrs.subscription}|${item.attrs.ask ?? ''}|${groups}`;
  });
}

async function expectPush(client: ScriptedClient, expected: string): Promise<string> {
  const push = await client.expect(`<iq type='set' to='${client.jid}'><query xmlns='${NS_ROSTER}'/></iq>`);
  assert.equal(push.attrs.from, undefined);
  assert.deepEqual(items(push.getChild('query')), [expected]);
  client.send(`<iq type='result' id='${push.attrs.id}'/>`);
  const ver = push.getChild('query')!.attrs.ver;
  assert.match(ver, /.+/, 'a push carries the new roster version');
  return ver;
}

async function expectError(client: ScriptedClient, id: string, condition: string, type: string): Promise<void> {
  await client.expect(`<iq type='error' id='${id}'><error type='${type}'><${condition} xmlns='${NS_STANZAS}'/></error></iq>`);
}

describe('roster management (RFC 6121 §2)', () => {
  before(async () => {
    server = await startTestServer({ toml: '[modules.roster]\nmax_name_length = 20\nmax_group_length = 10\n' });
  });
  after(async () => {
    await server?.stop();
  });

  it('advertises roster versioning and returns an empty roster with a version', async () => {
    const user = await newUser();
    const c = await connect(user, 'desk');
    assert.ok(c.features().getChild('ver', 'urn:xmpp:features:rosterver'), c.features().toString());
    assert.equal(c.features().getChild('sub', 'urn:xmpp:features:pre-approval'), undefined, 'pre-approval is not offered');
    const result = await rosterGet(c);
    assert.equal(result.attrs.to, c.jid);
    const query = result.getChild('query', NS_ROSTER)!;
    assert.ok(query.attrs.ver !== undefined && query.attrs.ver !== '');
    assert.deepEqual(items(query), []);
  });

  it('adds, updates and removes items, pushing to every interested resource', async () => {
    const user = await newUser();
    const contact = `contact${counter}@example.net`;
    const a = await connect(user, 'a');
    const b = await connect(user, 'b');
    const c = await connect(user, 'c'); // never asks for the roster: no pushes
    await rosterGet(a);
    await rosterGet(b);

    // §2.3: add. The result, then the pushes (to the sender too).
    const id = set(a, `<item jid='${contact}' name='Nurse'><group>Servants</group><group>Friends</group></item>`);
    await a.expect(`<iq type='result' id='${id}'/>`);
    const ver1 = await expectPush(a, `${contact}|Nurse|none||Friends,Servants`);
    assert.equal(await expectPush(b, `${contact}|Nurse|none||Friends,Servants`), ver1);

    // §2.4: update (groups replaced, name changed); a client cannot set the subscription.
    const id2 = set(b, `<item jid='${contact}' name='Nanny' subscription='both' ask='subscribe'><group>Family</group></item>`);
    await b.expect(`<iq type='result' id='${id2}'/>`);
    const ver2 = await expectPush(b, `${contact}|Nanny|none||Family`);
    assert.notEqual(ver2, ver1);
    await expectPush(a, `${contact}|Nanny|none||Family`);

    // Removing the name and the groups.
    const id3 = set(a, `<item jid='${contact}'/>`);
    await a.expect(`<iq type='result' id='${id3}'/>`);
    await expectPush(a, `${contact}||none||`);
    await expectPush(b, `${contact}||none||`);

    const result = await rosterGet(a);
    assert.deepEqual(items(result.getChild('query')), [`${contact}||none||`]);

    // §2.5: remove.
    const id4 = set(a, `<item jid='${contact}' subscription='remove'/>`);
    await a.expect(`<iq type='result' id='${id4}'/>`);
    await a.expect(`<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${contact}' subscription='remove'/></query></iq>`);
    await b.expect(`<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${contact}' subscription='remove'/></query></iq>`);
    assert.deepEqual(items((await rosterGet(a)).getChild('query')), []);
    await c.expectNothing(200);
  });

  it('normalises JIDs and keeps one item per JID', async () => {
    const user = await newUser();
    const a = await connect(user, 'a');
    await rosterGet(a);
    const id = set(a, `<item jid='Juliet@Example.COM' name='J'/>`);
    await a.expect(`<iq type='result' id='${id}'/>`);
    await expectPush(a, 'juliet@example.com|J|none||');
    const id2 = set(a, `<item jid='juliet@example.com' name='Jules'/>`);
    await a.expect(`<iq type='result' id='${id2}'/>`);
    await expectPush(a, 'juliet@example.com|Jules|none||');
    assert.deepEqual(items((await rosterGet(a)).getChild('query')), ['juliet@example.com|Jules|none||']);
  });

  it('answers a get with the current version by an empty result (§2.6.3)', async () => {
    const user = await newUser();
    const a = await connect(user, 'a');
    const first = await rosterGet(a, '');
    const ver0 = first.getChild('query')!.attrs.ver;
    const same = await rosterGet(a, ver0);
    assert.equal(same.getChildElements().length, 0, `expected an empty result: ${same.toString()}`);

    const id = set(a, `<item jid='romeo@example.net'/>`);
    await a.expect(`<iq type='result' id='${id}'/>`);
    const ver1 = await expectPush(a, 'romeo@example.net||none||');
    assert.notEqual(ver1, ver0);
    // An old version gets the whole roster and the new version.
    const full = await rosterGet(a, ver0);
    assert.equal(full.getChild('query')!.attrs.ver, ver1);
    assert.deepEqual(items(full.getChild('query')), ['romeo@example.net||none||']);
    // The current one: empty again, on another resource too.
    const b = await connect(user, 'b');
    assert.equal((await rosterGet(b, ver1)).getChildElements().length, 0);
    // A version from nowhere: the whole roster.
    assert.deepEqual(items((await rosterGet(b, 'bogus')).getChild('query')), ['romeo@example.net||none||']);
  });

  it('refuses bad roster sets with the errors of §2.3.3', async () => {
    const user = await newUser();
    const other = await newUser('other');
    const a = await connect(user, 'a');
    await rosterGet(a);
    const cases: [string, string, string][] = [
      [`<item jid='x@example.net'/><item jid='y@example.net'/>`, 'bad-request', 'modify'],
      ['', 'bad-request', 'modify'],
      [`<item name='no jid'/>`, 'bad-request', 'modify'],
      [`<item jid='@example.net'/>`, 'jid-malformed', 'modify'],
      [`<item jid='x@example.net'><group>G</group><group>G</group></item>`, 'bad-request', 'modify'],
      [`<item jid='x@example.net'><group></group></item>`, 'not-acceptable', 'modify'],
      [`<item jid='x@example.net'><group>0123456789X</group></item>`, 'not-acceptable', 'modify'],
      [`<item jid='x@example.net' name='${'n'.repeat(21)}'/>`, 'not-acceptable', 'modify'],
      [`<item jid='${user.jid}'/>`, 'not-allowed', 'cancel'],
      [`<item jid='nobody@example.net' subscription='remove'/>`, 'item-not-found', 'cancel'],
    ];
    for (const [item, condition, type] of cases) {
      const id = set(a, item);
      await expectError(a, id, condition, type);
    }
    // Limits are inclusive.
    const ok = set(a, `<item jid='x@example.net' name='${'n'.repeat(20)}'><group>0123456789</group></item>`);
    await a.expect(`<iq type='result' id='${ok}'/>`);
    await expectPush(a, `x@example.net|${'n'.repeat(20)}|none||0123456789`);

    // Another account's roster is not for reading or writing (§2.1.5).
    a.send(`<iq type='get' id='peek' to='${other.jid}'><query xmlns='${NS_ROSTER}'/></iq>`);
    await expectError(a, 'peek', 'forbidden', 'auth');
    a.send(`<iq type='set' id='poke' to='${other.jid}'><query xmlns='${NS_ROSTER}'><item jid='z@example.net'/></query></iq>`);
    await expectError(a, 'poke', 'forbidden', 'auth');
    // Addressed to the own bare JID, it is the user's roster.
    const own = await a.iq(`<iq type='get' id='own' to='${user.jid}'><query xmlns='${NS_ROSTER}'/></iq>`);
    assert.deepEqual(items(own.getChild('query')), [`x@example.net|${'n'.repeat(20)}|none||0123456789`]);
    await a.expectNothing(100);
  });
});
