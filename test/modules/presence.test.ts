/**
 * RFC 6121 §4 presence and the §8.5 delivery rules that depend on it, with scripted clients:
 * initial presence and probes, broadcasts, resources and priorities, directed presence, the
 * unavailable presence of a session that ends (cleanly or not), and what an unknown account
 * gives away (nothing).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type ScriptedClient, type TestServer, type TestUser } from '../support/index.ts';
import type { Subscription } from '../../src/storage/types.ts';

const NS_ROSTER = 'jabber:iq:roster';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

let server: TestServer;
let counter = 0;

async function newUser(name: string): Promise<TestUser> {
  return server.addUser(`${name}${++counter}`, 'secret');
}

/** Sets `owner`'s roster item for `contact` straight in storage. */
async function rosterItem(owner: TestUser, contact: TestUser, subscription: Subscription): Promise<void> {
  await server.server.storage.roster.put(
    { username: owner.username, domain: owner.domain },
    { jid: contact.jid, subscription, askOut: false, askIn: false, groups: [] },
  );
}

async function friends(x: TestUser, y: TestUser): Promise<void> {
  await rosterItem(x, y, 'both');
  await rosterItem(y, x, 'both');
}

async function connect(user: TestUser, resource: string): Promise<ScriptedClient> {
  return server.login(user.jid, user.password, { resource, name: `${user.username}/${resource}` });
}

/** Connected and available; the caller expects whatever else initial presence brings. */
async function available(user: TestUser, resource: string, presence = '<presence/>'): Promise<ScriptedClient> {
  const client = await connect(user, resource);
  client.send(presence);
  await client.expect(`<presence from='${client.jid}' to='${client.jid}'/>`);
  return client;
}

function priority(n: number): string {
  return `<presence><priority>${n}</priority></presence>`;
}

describe('presence (RFC 6121 §4)', () => {
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.stop();
  });

  it('initial presence goes to subscribers and own resources; probes bring the contacts\' presence', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const carol = await newUser('carol');
    await friends(alice, bob);
    const b1 = await available(bob, 'one', "<presence><show>away</show><priority>1</priority></presence>");
    const b2 = await available(bob, 'two');
    await b2.expect(`<presence from='${b1.jid}' to='${b2.jid}'><show>away</show></presence>`);
    await b1.expect(`<presence from='${b2.jid}' to='${b1.jid}'/>`);
    const c = await available(carol, 'desk');

    const a = await connect(alice, 'desk');
    a.send("<presence><status>in clinic</status></presence>");
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'><status>in clinic</status></presence>`);
    await a.expect(`<presence from='${b1.jid}' to='${alice.jid}'><show>away</show><priority>1</priority></presence>`);
    await a.expect(`<presence from='${b2.jid}' to='${alice.jid}'/>`);
    await b1.expect(`<presence from='${a.jid}' to='${bob.jid}'><status>in clinic</status></presence>`);
    await b2.expect(`<presence from='${a.jid}' to='${bob.jid}'><status>in clinic</status></presence>`);
    await c.expectNothing(200);

    // A second resource: sees the first one, and the contacts again (the probe is the account's).
    const a2 = await connect(alice, 'phone');
    a2.send('<presence/>');
    await a2.expect(`<presence from='${a2.jid}' to='${a2.jid}'/>`);
    await a2.expect(`<presence from='${a.jid}' to='${a2.jid}'><status>in clinic</status></presence>`);
    await a2.expect(`<presence from='${b1.jid}' to='${alice.jid}'/>`);
    await a2.expect(`<presence from='${b2.jid}' to='${alice.jid}'/>`);
    await a.expect(`<presence from='${a2.jid}' to='${a.jid}'/>`);
    await a.expect(`<presence from='${b1.jid}' to='${alice.jid}'/>`);
    await a.expect(`<presence from='${b2.jid}' to='${alice.jid}'/>`);
    await b1.expect(`<presence from='${a2.jid}' to='${bob.jid}'/>`);
    await b2.expect(`<presence from='${a2.jid}' to='${bob.jid}'/>`);

    // Updates and unavailable: subscribers and every own resource, nobody else.
    a.send('<presence><show>dnd</show></presence>');
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'><show>dnd</show></presence>`);
    await a2.expect(`<presence from='${a.jid}' to='${a2.jid}'><show>dnd</show></presence>`);
    await b1.expect(`<presence from='${a.jid}' to='${bob.jid}'><show>dnd</show></presence>`);
    await b2.expect(`<presence from='${a.jid}' to='${bob.jid}'><show>dnd</show></presence>`);
    a.send("<presence type='unavailable'><status>gone home</status></presence>");
    await a.expect(`<presence from='${a.jid}' to='${a.jid}' type='unavailable'><status>gone home</status></presence>`);
    await a2.expect(`<presence from='${a.jid}' to='${a2.jid}' type='unavailable'/>`);
    await b1.expect(`<presence from='${a.jid}' to='${bob.jid}' type='unavailable'><status>gone home</status></presence>`);
    await b2.expect(`<presence from='${a.jid}' to='${bob.jid}' type='unavailable'/>`);
    // No longer available: neither presence nor messages for the bare JID reach it.
    b1.send(`<presence><show>chat</show></presence>`);
    await b1.expect(`<presence from='${b1.jid}' to='${b1.jid}'/>`);
    await b2.expect(`<presence from='${b1.jid}' to='${b2.jid}'/>`);
    await a2.expect(`<presence from='${b1.jid}' to='${alice.jid}'><show>chat</show></presence>`);
    b1.send(`<message to='${alice.jid}' type='chat' id='m1'><body>hi</body></message>`);
    await a2.expect(`<message from='${b1.jid}' id='m1'/>`);
    await a.expectNothing(200);
    await c.expectNothing(0);
  });

  it('presence goes to from/both subscribers only; to-only contacts are probed', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    await rosterItem(alice, bob, 'to');
    await rosterItem(bob, alice, 'from');
    const b = await available(bob, 'desk');
    const a = await connect(alice, 'desk');
    a.send('<presence/>');
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'/>`);
    await a.expect(`<presence from='${b.jid}' to='${alice.jid}'/>`);
    await b.expectNothing(200);
  });

  it('a probe without subscription is answered by unsubscribed, which cancels the stale subscription', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    await rosterItem(alice, bob, 'to'); // bob's server knows nothing of it
    const b = await available(bob, 'desk');
    const a = await connect(alice, 'desk');
    await a.iq(`<iq type='get' id='r'><query xmlns='${NS_ROSTER}'/></iq>`);
    a.send('<presence/>');
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'/>`);
    await a.expect(`<presence from='${bob.jid}' to='${alice.jid}' type='unsubscribed'/>`);
    await a.expect(`<iq type='set'><query xmlns='${NS_ROSTER}'><item jid='${bob.jid}' subscription='none'/></query></iq>`);
    await b.expectNothing(200);
  });

  it('routes messages for the bare JID by priority; negative priority gets none (§8.5.2)', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const b = await available(bob, 'desk');
    const a1 = await available(alice, 'one', priority(5));
    const a2 = await available(alice, 'two', priority(10));
    await a2.expect(`<presence from='${a1.jid}' to='${a2.jid}'/>`);
    await a1.expect(`<presence from='${a2.jid}' to='${a1.jid}'/>`);
    const a3 = await available(alice, 'three', priority(-1));
    await a3.expect(`<presence from='${a1.jid}'/>`);
    await a3.expect(`<presence from='${a2.jid}'/>`);
    await a1.expect(`<presence from='${a3.jid}'><priority>-1</priority></presence>`);
    await a2.expect(`<presence from='${a3.jid}'><priority>-1</priority></presence>`);

    b.send(`<message to='${alice.jid}' type='chat' id='c1'><body>to the highest</body></message>`);
    await a2.expect(`<message from='${b.jid}' to='${alice.jid}' id='c1'/>`);
    b.send(`<message to='${alice.jid}' id='n1'><body>normal</body></message>`);
    await a2.expect(`<message from='${b.jid}' id='n1'/>`);
    // A tie: both highest get it.
    a1.send(priority(10));
    await a1.expect(`<presence from='${a1.jid}' to='${a1.jid}'><priority>10</priority></presence>`);
    await a2.expect(`<presence from='${a1.jid}'/>`);
    await a3.expect(`<presence from='${a1.jid}'/>`);
    b.send(`<message to='${alice.jid}' type='chat' id='c2'><body>tie</body></message>`);
    await a1.expect(`<message from='${b.jid}' id='c2'/>`);
    await a2.expect(`<message from='${b.jid}' id='c2'/>`);
    // Headlines go to every non-negative resource.
    b.send(`<message to='${alice.jid}' type='headline' id='h1'><body>news</body></message>`);
    await a1.expect(`<message id='h1'/>`);
    await a2.expect(`<message id='h1'/>`);
    // The negative one gets messages only at its full JID.
    b.send(`<message to='${a3.jid}' type='chat' id='c3'><body>direct</body></message>`);
    await a3.expect(`<message from='${b.jid}' to='${a3.jid}' id='c3'/>`);
    // Errors to the bare JID are dropped (§8.5.2.1.1).
    b.send(`<message to='${alice.jid}' type='error' id='e1'><error type='cancel'><gone xmlns='${NS_STANZAS}'/></error></message>`);
    await a1.expectNothing(200);
    await a2.expectNothing(0);
    await a3.expectNothing(0);
    await b.expectNothing(0);
  });

  it('refuses an invalid priority with bad-request and keeps the session unavailable', async () => {
    const alice = await newUser('alice');
    const a = await connect(alice, 'desk');
    for (const bad of ['128', '-129', 'high', '1.5', '']) {
      a.send(`<presence id='p'><priority>${bad}</priority></presence>`);
      await a.expect(`<presence type='error' id='p'><error type='modify'><bad-request xmlns='${NS_STANZAS}'/></error></presence>`);
    }
    a.send(`<presence id='p2'><priority>1</priority><priority>2</priority></presence>`);
    await a.expect(`<presence type='error' id='p2'><error type='modify'><bad-request xmlns='${NS_STANZAS}'/></error></presence>`);
    a.send(`<presence id='t' type='online'/>`);
    await a.expect(`<presence type='error' id='t'><error type='modify'><bad-request xmlns='${NS_STANZAS}'/></error></presence>`);
    const bob = await newUser('bob');
    const b = await connect(bob, 'desk');
    b.send(`<message to='${alice.jid}' type='chat' id='m'><body>anyone?</body></message>`);
    // Alice is not available: no session takes it, so it waits in offline storage.
    await b.expectNothing(200);
    await a.expectNothing(100);
    // The limits themselves are fine; becoming available brings the stored message.
    a.send(priority(127));
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'><priority>127</priority></presence>`);
    await a.expect(`<message id='m'><body>anyone?</body><delay xmlns='urn:xmpp:delay' from='localhost'/></message>`);
    a.send(priority(-128));
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'><priority>-128</priority></presence>`);
  });

  it('a message to a resource that is gone: chat falls back to the bare JID, normal is refused (§8.5.3.2.1)', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const a = await available(alice, 'desk');
    const b = await available(bob, 'desk');
    b.send(`<message to='${alice.jid}/gone' type='chat' id='c'><body>still there?</body></message>`);
    await a.expect(`<message from='${b.jid}' to='${alice.jid}/gone' type='chat' id='c'/>`);
    b.send(`<message to='${alice.jid}/gone' id='n'><body>normal</body></message>`);
    await b.expect(`<message type='error' id='n' from='${alice.jid}/gone'><error type='cancel'><service-unavailable xmlns='${NS_STANZAS}'/></error></message>`);
    b.send(`<message to='${alice.jid}/gone' type='headline' id='h'><body>news</body></message>`);
    await a.expectNothing(200);
    await b.expectNothing(0);
  });

  it('directed presence: delivered, and followed by unavailable when the session ends (§4.6)', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const carol = await newUser('carol');
    const dave = await newUser('dave');
    await friends(alice, bob);
    const b = await available(bob, 'desk');
    const c = await available(carol, 'desk');
    const d = await available(dave, 'desk');
    const a = await available(alice, 'desk');
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}'/>`);
    await a.expect(`<presence from='${b.jid}' to='${alice.jid}'/>`);

    a.send(`<presence to='${carol.jid}'><show>chat</show></presence>`);
    await c.expect(`<presence from='${a.jid}' to='${carol.jid}'><show>chat</show></presence>`);
    a.send(`<presence to='${d.jid}'/>`);
    await d.expect(`<presence from='${a.jid}' to='${d.jid}'/>`);
    // Directed to a subscriber: delivered; the broadcast unavailable covers it later.
    a.send(`<presence to='${bob.jid}'><status>just for you</status></presence>`);
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}'><status>just for you</status></presence>`);
    // Broadcasts do not go to directed-presence targets.
    a.send('<presence><show>away</show></presence>');
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'/>`);
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}'><show>away</show></presence>`);
    // A directed unavailable ends it for that target.
    a.send(`<presence to='${d.jid}' type='unavailable'/>`);
    await d.expect(`<presence from='${a.jid}' to='${d.jid}' type='unavailable'/>`);
    await c.expectNothing(100);

    await a.close();
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}' type='unavailable'/>`);
    await c.expect(`<presence from='${a.jid}' to='${carol.jid}' type='unavailable'/>`);
    await b.expectNothing(200);
    await c.expectNothing(0);
    await d.expectNothing(0);
  });

  it('an abrupt disconnection sends unavailable to contacts, own resources and directed targets', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const carol = await newUser('carol');
    await friends(alice, bob);
    const b = await available(bob, 'desk');
    const c = await available(carol, 'desk');
    const a2 = await available(alice, 'phone');
    await b.expect(`<presence from='${a2.jid}'/>`);
    await a2.expect(`<presence from='${b.jid}'/>`);
    const a = await available(alice, 'desk');
    await a.expect(`<presence from='${a2.jid}'/>`);
    await a.expect(`<presence from='${b.jid}'/>`);
    await a2.expect(`<presence from='${a.jid}'/>`);
    await a2.expect(`<presence from='${b.jid}'/>`);
    await b.expect(`<presence from='${a.jid}'/>`);
    a.send(`<presence to='${carol.jid}'/>`);
    await c.expect(`<presence from='${a.jid}' to='${carol.jid}'/>`);

    a.destroy();
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}' type='unavailable'/>`);
    await a2.expect(`<presence from='${a.jid}' to='${a2.jid}' type='unavailable'/>`);
    await c.expect(`<presence from='${a.jid}' to='${carol.jid}' type='unavailable'/>`);
    await b.expectNothing(200);
  });

  it('a session replaced by a new one with the same resource goes unavailable first', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    await friends(alice, bob);
    const b = await available(bob, 'desk');
    const a = await available(alice, 'phone');
    await a.expect(`<presence from='${b.jid}'/>`);
    await b.expect(`<presence from='${a.jid}'/>`);

    const replacement = await connect(alice, 'phone');
    await a.expectStreamError('conflict');
    await b.expect(`<presence from='${a.jid}' to='${bob.jid}' type='unavailable'/>`);
    replacement.send('<presence/>');
    await b.expect(`<presence from='${replacement.jid}' to='${bob.jid}'/>`);
  });

  it('presence to the own bare JID reaches the available resources; a self-probe is answered', async () => {
    const alice = await newUser('alice');
    const a = await available(alice, 'a');
    const b = await available(alice, 'b');
    await b.expect(`<presence from='${a.jid}' to='${b.jid}'/>`);
    await a.expect(`<presence from='${b.jid}' to='${a.jid}'/>`);
    a.send(`<presence to='${alice.jid}'><status>note to self</status></presence>`);
    await a.expect(`<presence from='${a.jid}' to='${alice.jid}'><status>note to self</status></presence>`);
    await b.expect(`<presence from='${a.jid}' to='${alice.jid}'><status>note to self</status></presence>`);
    a.send(`<presence to='${alice.jid}' type='probe'/>`);
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'/>`);
    await a.expect(`<presence from='${b.jid}' to='${a.jid}'/>`);
    // Not a directed presence to remember: closing sends it nothing more than the broadcast.
    await a.close();
    await b.expect(`<presence from='${a.jid}' to='${b.jid}' type='unavailable'/>`);
    await b.expectNothing(200);
  });

  it('presence for an unknown account gives nothing away', async () => {
    const alice = await newUser('alice');
    const carol = await newUser('carol'); // exists, knows nothing of alice
    const nobody = `nobody${counter}@${server.domain}`;
    // Alice believes she is subscribed to both: her probes get the same answer from each.
    for (const jid of [nobody, carol.jid]) {
      await server.server.storage.roster.put({ username: alice.username, domain: alice.domain }, { jid, subscription: 'to', askOut: false, askIn: false, groups: [] });
    }
    const a = await connect(alice, 'desk');
    await a.iq(`<iq type='get' id='r'><query xmlns='${NS_ROSTER}'/></iq>`);
    a.send('<presence/>');
    await a.expect(`<presence from='${a.jid}' to='${a.jid}'/>`);
    const answers: Record<string, Record<string, string>> = {};
    for (let i = 0; i < 4; i++) {
      const got = await a.next();
      if (got.name === 'presence') {
        assert.equal(got.getChildElements().length, 0, got.toString());
        answers[got.attrs.from] = { ...got.attrs, from: 'X' };
      } else {
        assert.equal(got.getChild('query')?.getChild('item')?.attrs.subscription, 'none', got.toString());
      }
    }
    assert.deepEqual(answers[nobody], { from: 'X', to: alice.jid, type: 'unsubscribed' });
    assert.deepEqual(answers[carol.jid], answers[nobody]);

    // Directed presence and probes from the client: nothing comes back either way.
    a.send(`<presence to='${nobody}'/>`);
    a.send(`<presence to='${nobody}/res'/>`);
    a.send(`<presence to='${nobody}' type='unavailable'/>`);
    a.send(`<presence to='${nobody}' type='probe'/>`);
    a.send(`<presence to='${carol.jid}' type='probe'/>`);
    await a.expectNothing(300);
    await a.close();
  });
});
