/**
 * RFC 6121 §3 presence subscriptions between two accounts of one server, with scripted
 * clients: every state of Appendix A is reached by the protocol, and each step is checked by
 * the exact stanzas both sides receive (forwarded or not, roster pushes, presence).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Element } from 'ltx';
import { el } from '../../src/xml/element.ts';
import { matches, parsePattern, startTestServer, type ScriptedClient, type TestServer, type TestUser } from '../support/index.ts';

const NS_ROSTER = 'jabber:iq:roster';

let server: TestServer;
let counter = 0;

async function pair(): Promise<[TestUser, TestUser]> {
  const n = ++counter;
  return [await server.addUser(`alice${n}`, 'secret'), await server.addUser(`bob${n}`, 'secret')];
}

/** Logged in, roster requested (empty expected unless `items`), and (by default) available. */
async function online(user: TestUser, resource: string, options: { presence?: boolean } = {}): Promise<ScriptedClient> {
  const client = await server.login(user.jid, user.password, { resource, name: `${user.username}/${resource}` });
  await client.iq(`<iq type='get' id='roster'><query xmlns='${NS_ROSTER}'/></iq>`);
  if (options.presence !== false) {
    client.send('<presence/>');
    await client.expect(`<presence from='${client.jid}' to='${client.jid}'/>`);
  }
  return client;
}

/** The next stanza is a roster push of exactly this item; returns its `ver`. */
async function expectPush(client: ScriptedClient, jid: string, subscription: string, ask = false): Promise<string> {
  const push = await client.expect(`<iq type='set' to='${client.jid}'><query xmlns='${NS_ROSTER}'><item jid='${jid}' subscription='${subscription}'/></query></iq>`);
  assert.equal(push.attrs.from, undefined, 'a roster push comes from the account itself');
  const item = push.getChild('query')!.getChild('item')!;
  assert.equal(item.attrs.ask, ask ? 'subscribe' : undefined, `ask attribute of the pushed ${jid}`);
  client.send(`<iq type='result' id='${push.attrs.id}'/>`);
  return push.getChild('query')!.attrs.ver;
}

/** The roster as a map jid → "subscription[+ask]". */
async function rosterOf(client: ScriptedClient): Promise<Record<string, string>> {
  const result = await client.iq(`<iq type='get' id='${client.id('get')}'><query xmlns='${NS_ROSTER}'/></iq>`);
  const out: Record<string, string> = {};
  for (const item of result.getChild('query')?.getChildren('item') ?? []) {
    out[item.attrs.jid] = item.attrs.subscription + (item.attrs.ask === 'subscribe' ? '+ask' : '');
  }
  return out;
}

/** The next `patterns.length` stanzas match the patterns, in any order. */
async function expectAll(client: ScriptedClient, patterns: string[]): Promise<Element[]> {
  const remaining = patterns.map((p) => ({ p, e: parsePattern(p) }));
  const got: Element[] = [];
  while (remaining.length > 0) {
    const element = await client.next();
    const i = remaining.findIndex((r) => matches(r.e, element));
    if (i < 0) throw client.failure(`unexpected ${element.toString()} while waiting for ${remaining.map((r) => r.p).join(' ')}`);
    remaining.splice(i, 1);
    got.push(element);
  }
  return got;
}

/** Both ways, by the protocol: alice and bob end with 'both'. Leaves nothing queued. */
async function subscribeBoth(a: ScriptedClient, alice: TestUser, b: ScriptedClient, bob: TestUser): Promise<void> {
  for (const [x, xu, y, yu] of [[a, alice, b, bob], [b, bob, a, alice]] as const) {
    x.send(`<presence to='${yu.jid}' type='subscribe'/>`);
    await x.expect(`<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${yu.jid}'/></query></iq>`);
    await y.expect(`<presence from='${xu.jid}' to='${yu.jid}' type='subscribe'/>`);
    y.send(`<presence to='${xu.jid}' type='subscribed'/>`);
    await y.expect(`<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${xu.jid}'/></query></iq>`);
    await x.expect(`<presence from='${yu.jid}' type='subscribed'/>`);
    await x.expect(`<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${yu.jid}'/></query></iq>`);
    await x.expect(`<presence from='${y.jid}' to='${xu.jid}'/>`);
  }
}

describe('presence subscriptions (RFC 6121 §3)', () => {
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('subscribe and approve both ways: None → None+PendingOut → To → Both, with pushes and presence', async () => {
    const [alice, bob] = await pair();
    const a = await online(alice, 'desk');
    const b = await online(bob, 'phone');

    // §3.1.2: the request leaves stamped with the bare JID; the user sees ask='subscribe'.
    a.send(`<presence to='${bob.jid}' type='subscribe' id='s1'><status>it is Alice</status></presence>`);
    await expectPush(a, bob.jid, 'none', true);
    const request = await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='subscribe' id='s1'><status>it is Alice</status></presence>`);
    assert.equal(request.attrs.from, alice.jid);
    // The contact gets no roster push for a mere request (None + Pending In is not in its roster).
    await b.expectNothing(200);
    assert.deepEqual(await rosterOf(b), {});

    // §3.1.5: approval. The contact's item becomes 'from'; the user gets 'subscribed', a push
    // with 'to', then the contact's current presence.
    b.send(`<presence to='${alice.jid}' type='subscribed'/>`);
    await expectPush(b, alice.jid, 'from');
    await a.expect(`<presence from='${bob.jid}' to='${alice.jid}' type='subscribed'/>`);
    await expectPush(a, bob.jid, 'to');
    await a.expect(`<presence from='${b.jid}' to='${alice.jid}'/>`);

    // The other way round: From → From+PendingOut → Both.
    b.send(`<presence to='${alice.jid}' type='subscribe'/>`);
    await expectPush(b, alice.jid, 'from', true);
    await a.expect(`<presence from='${bob.jid}' to='${alice.jid}' type='subscribe'/>`);
    a.send(`<presence to='${bob.jid}' type='subscribed'/>`);
    await expectPush(a, bob.jid, 'both');
    await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='subscribed'/>`);
    await expectPush(b, alice.jid, 'both');
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}'/>`);

    assert.deepEqual(await rosterOf(a), { [bob.jid]: 'both' });
    assert.deepEqual(await rosterOf(b), { [alice.jid]: 'both' });

    // Presence now flows both ways.
    a.send('<presence><show>away</show></presence>');
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'><show>away</show></presence>`);
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}'><show>away</show></presence>`);
    await a.expectNothing(100);
    await b.expectNothing(100);
  });

  it('keeps a request for an offline contact and delivers it at each initial presence until answered', async () => {
    const [alice, bob] = await pair();
    const a = await online(alice, 'desk');
    a.send(`<presence to='${bob.jid}' type='subscribe'/>`);
    await expectPush(a, bob.jid, 'none', true);
    // A second request is routed again but stored only once (§3.1.3).
    a.send(`<presence to='${bob.jid}' type='subscribe'><status>again</status></presence>`);
    await a.expectNothing(200);

    // A connected resource that has not sent initial presence gets nothing yet.
    const b1 = await online(bob, 'one', { presence: false });
    assert.deepEqual(await rosterOf(b1), {});
    await b1.expectNothing(200);
    b1.send('<presence/>');
    const first = await b1.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='subscribe'/>`);
    assert.equal(first.getChild('status'), undefined, 'the first request is the one kept');
    await b1.expect(`<presence from='${b1.jid}' to='${b1.jid}'/>`);

    // Another resource coming online gets it too; the first one sees that resource's presence.
    const b2 = await online(bob, 'two', { presence: false });
    b2.send('<presence/>');
    await b2.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='subscribe'/>`);
    await b2.expect(`<presence from='${b2.jid}' to='${b2.jid}'/>`);
    await b2.expect(`<presence from='${b1.jid}' to='${b2.jid}'/>`);
    await b1.expect(`<presence from='${b2.jid}' to='${b1.jid}'/>`);

    // Denied: the user learns it; the contact's roster never showed the request.
    b2.send(`<presence to='${alice.jid}' type='unsubscribed'/>`);
    await a.expect(`<presence from='${bob.jid}' to='${alice.jid}' type='unsubscribed'/>`);
    await expectPush(a, bob.jid, 'none');
    await b1.expectNothing(200);
    await b2.expectNothing(0);
    assert.deepEqual(await rosterOf(b2), {});

    // Answered: no longer redelivered.
    await b1.close();
    await b2.close();
    const b3 = await online(bob, 'three', { presence: false });
    b3.send('<presence/>');
    await b3.expect(`<presence from='${b3.jid}' to='${b3.jid}'/>`);
    await b3.expectNothing(200);
  });

  it('the user cancels a pending request (None+PendingOut/In → None+PendingIn etc.)', async () => {
    const [alice, bob] = await pair();
    const a = await online(alice, 'desk');
    const b = await online(bob, 'phone');
    // Alice names the item first: it is hers whatever its subscription state.
    await a.iq(`<iq type='set' id='name'><query xmlns='${NS_ROSTER}'><item jid='${bob.jid}' name='Bob'/></query></iq>`);
    await expectPush(a, bob.jid, 'none');
    a.send(`<presence to='${bob.jid}' type='subscribe'/>`);
    await expectPush(a, bob.jid, 'none', true);
    await b.expect(`<presence from='${alice.jid}' type='subscribe'/>`);
    // Bob asks too, before answering: alice is None+PendingOut/In, bob the same.
    b.send(`<presence to='${alice.jid}' type='subscribe'/>`);
    await expectPush(b, alice.jid, 'none', true);
    await a.expect(`<presence from='${bob.jid}' type='subscribe'/>`);
    // Alice withdraws hers (A.2.2: None+PendingOut/In → None+PendingIn): her item stays,
    // without ask; bob is told (A.3.2: delivered) and his state drops the pending-in part.
    a.send(`<presence to='${bob.jid}' type='unsubscribe'/>`);
    await expectPush(a, bob.jid, 'none');
    await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='unsubscribe'/>`);
    await b.expectNothing(150);
    // Bob's request is still pending at alice: she approves it → From.
    a.send(`<presence to='${bob.jid}' type='subscribed'/>`);
    await expectPush(a, bob.jid, 'from');
    await b.expect(`<presence from='${alice.jid}' type='subscribed'/>`);
    await expectPush(b, alice.jid, 'to');
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}'/>`);
    // Approving again is neither routed nor a change (A.2.3 From: no).
    a.send(`<presence to='${bob.jid}' type='subscribed'/>`);
    await a.expectNothing(150);
    await b.expectNothing(0);
    assert.deepEqual(await rosterOf(a), { [bob.jid]: 'from' });
    assert.deepEqual(await rosterOf(b), { [alice.jid]: 'to' });
  });

  it('unsubscribe ends the user\'s subscription and the contact sends unavailable (§3.3)', async () => {
    const [alice, bob] = await pair();
    const a = await online(alice, 'desk');
    const b = await online(bob, 'phone');
    await subscribeBoth(a, alice, b, bob);
    a.send(`<presence to='${bob.jid}' type='unsubscribe'/>`);
    await expectPush(a, bob.jid, 'from');
    await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='unsubscribe'/>`);
    await expectPush(b, alice.jid, 'to');
    await a.expect(`<presence from='${b.jid}' to='${alice.jid}' type='unavailable'/>`);
    // Bob's presence no longer reaches alice; alice's still reaches bob.
    b.send('<presence><show>dnd</show></presence>');
    await b.expect(`<presence from='${b.jid}' to='${b.jid}'><show>dnd</show></presence>`);
    await a.expectNothing(200);
    a.send('<presence><show>chat</show></presence>');
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'/>`);
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}'><show>chat</show></presence>`);
    // Unsubscribing again is routed but changes nothing on either side.
    a.send(`<presence to='${bob.jid}' type='unsubscribe'/>`);
    await a.expectNothing(200);
    await b.expectNothing(0);
  });

  it('unsubscribed cancels the contact\'s subscription and sends unavailable (§3.2)', async () => {
    const [alice, bob] = await pair();
    const a = await online(alice, 'desk');
    const b = await online(bob, 'phone');
    await subscribeBoth(a, alice, b, bob);
    b.send(`<presence to='${alice.jid}' type='unsubscribed'/>`);
    await expectPush(b, alice.jid, 'to');
    await a.expect(`<presence from='${bob.jid}' to='${alice.jid}' type='unsubscribed'/>`);
    await expectPush(a, bob.jid, 'from');
    await a.expect(`<presence from='${b.jid}' to='${alice.jid}' type='unavailable'/>`);
    // Once more: Both is gone, To → None on bob's side.
    a.send(`<presence to='${bob.jid}' type='unsubscribed'/>`);
    await expectPush(a, bob.jid, 'none');
    await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='unsubscribed'/>`);
    await expectPush(b, alice.jid, 'none');
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}' type='unavailable'/>`);
    // Nothing left to cancel: not routed.
    b.send(`<presence to='${alice.jid}' type='unsubscribed'/>`);
    await b.expectNothing(200);
    await a.expectNothing(0);
  });

  it('auto-replies subscribed when the contact already has a subscription from the user (§3.1.3)', async () => {
    const [alice, bob] = await pair();
    const a = await online(alice, 'desk');
    const b = await online(bob, 'phone');
    await subscribeBoth(a, alice, b, bob);
    // Alice's server lost her side of it.
    await server.server.storage.roster.remove({ username: alice.username, domain: alice.domain }, bob.jid);
    a.send(`<presence to='${bob.jid}' type='subscribe'/>`);
    await expectPush(a, bob.jid, 'none', true);
    await a.expect(`<presence from='${bob.jid}' to='${alice.jid}' type='subscribed'/>`);
    await expectPush(a, bob.jid, 'to');
    await a.expect(`<presence from='${b.jid}' to='${alice.jid}'/>`);
    await b.expectNothing(200);
  });

  it('removing a roster item cancels both subscriptions (§2.5.2)', async () => {
    const [alice, bob] = await pair();
    const a = await online(alice, 'desk');
    const a2 = await online(alice, 'laptop');
    await a2.expect(`<presence from='${a.jid}' to='${a2.jid}'/>`);
    await a.expect(`<presence from='${a2.jid}' to='${a.jid}'/>`);
    const b = await online(bob, 'phone');
    await subscribeBoth(a, alice, b, bob);
    await b.expect(`<presence from='${a2.jid}' to='${bob.jid}'/>`);
    await a2.expect(`<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${bob.jid}' subscription='none' ask='subscribe'/></query></iq>`);
    await a2.expect(`<presence from='${bob.jid}' type='subscribed'/>`);
    await a2.expect(`<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${bob.jid}' subscription='to'/></query></iq>`);
    await a2.expect(`<presence from='${b.jid}' to='${alice.jid}'/>`);
    await a2.expect(`<presence from='${bob.jid}' type='subscribe'/>`);
    await a2.expect(`<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${bob.jid}' subscription='both'/></query></iq>`);

    a.send(`<iq type='set' id='rm'><query xmlns='${NS_ROSTER}'><item jid='${bob.jid}' subscription='remove'/></query></iq>`);
    await expectAll(a, [
      "<iq type='result' id='rm'/>",
      `<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${bob.jid}' subscription='remove'/></query></iq>`,
      `<presence from='${b.jid}' to='${alice.jid}' type='unavailable'/>`,
    ]);
    await expectAll(a2, [
      `<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${bob.jid}' subscription='remove'/></query></iq>`,
      `<presence from='${b.jid}' to='${alice.jid}' type='unavailable'/>`,
    ]);
    await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='unsubscribe'/>`);
    await expectPush(b, alice.jid, 'to');
    await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='unsubscribed'/>`);
    await expectPush(b, alice.jid, 'none');
    await expectAll(b, [`<presence from='${a.jid}' to='${bob.jid}' type='unavailable'/>`, `<presence from='${a2.jid}' to='${bob.jid}' type='unavailable'/>`]);
    assert.deepEqual(await rosterOf(a), {});
    assert.deepEqual(await rosterOf(b), { [alice.jid]: 'none' });
  });

  it('treats subscription stanzas to a full JID as sent to the bare JID', async () => {
    const [alice, bob] = await pair();
    const a = await online(alice, 'desk');
    const b = await online(bob, 'phone');
    const b2 = await online(bob, 'tablet');
    await b2.expect(`<presence from='${b.jid}' to='${b2.jid}'/>`);
    await b.expect(`<presence from='${b2.jid}' to='${b.jid}'/>`);
    // The user's server sends it to the bare JID (§3.1.2)...
    a.send(`<presence to='${b2.jid}' type='subscribe'/>`);
    await expectPush(a, bob.jid, 'none', true);
    await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='subscribe'/>`);
    await b2.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='subscribe'/>`);
    // ...and one that arrives for a full JID anyway is handled as if sent to the bare JID (§8.5.3).
    server.server.router.route(el('presence', { type: 'unsubscribe', from: `${alice.jid}/desk`, to: b2.jid }));
    await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='unsubscribe'/>`);
    await b2.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='unsubscribe'/>`);
    // The request is gone: not redelivered to a new resource.
    const b3 = await online(bob, 'laptop', { presence: false });
    b3.send('<presence/>');
    await b3.expect(`<presence from='${b3.jid}' to='${b3.jid}'/>`);
  });

  it('a request to an account that does not exist gets no answer at all', async () => {
    const [alice] = await pair();
    const a = await online(alice, 'desk');
    a.send(`<presence to='nobody${counter}@${server.domain}' type='subscribe'/>`);
    await expectPush(a, `nobody${counter}@${server.domain}`, 'none', true);
    await a.expectNothing(300);
  });

  it('a request to oneself, or without a to, is not processed', async () => {
    const [alice] = await pair();
    const a = await online(alice, 'desk');
    a.send(`<presence to='${alice.jid}' type='subscribe'/>`);
    await a.expectNothing(200);
    a.send("<presence type='subscribe' id='no-to'/>");
    await a.expect("<presence type='error' id='no-to'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    assert.deepEqual(await rosterOf(a), {});
  });

  it('a deleted account unsubscribes from everyone (§2.5.3 / user:removed)', async () => {
    const [alice, bob] = await pair();
    const a = await online(alice, 'desk');
    const b = await online(bob, 'phone');
    await subscribeBoth(a, alice, b, bob);
    await server.server.accounts.remove({ username: alice.username, domain: alice.domain });
    await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='unsubscribe'/>`);
    await expectPush(b, alice.jid, 'to');
    await b.expect(`<presence from='${alice.jid}' to='${bob.jid}' type='unsubscribed'/>`);
    await expectPush(b, alice.jid, 'none');
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}' type='unavailable'/>`);
    await a.expectStreamError('not-authorized', { skip: true });
    await b.expectNothing(200);
  });
});
