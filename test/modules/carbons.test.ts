/**
 * XEP-0280 message carbons. alice has three resources: desk (priority 5) and phone
 * (priority 1) enable carbons, pager (priority 1) does not; bob has one. Every copy is
 * checked exactly, its bare-JID `from` included, and every client that must get nothing is
 * checked to stay quiet.
 */
import { strict as assert } from 'node:assert';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';
import { assertExact } from './exact.ts';
import { el } from '../../src/xml/element.ts';
import { parseJid } from '../../src/router/jid.ts';

const NS = 'urn:xmpp:carbons:2';
const FWD = 'urn:xmpp:forward:0';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** The message exactly as `client` must receive it. */
async function gets(client: ScriptedClient, message: string): Promise<void> {
  assertExact(await client.expect(message), message);
}

/** The carbon `client` (alice's `resource`) must receive: `original` wrapped, from alice's bare JID. */
async function getsCarbon(client: ScriptedClient, kind: 'sent' | 'received', original: string, type?: string): Promise<void> {
  const resource = client.jid!.split('/')[1];
  const wrapped = original.replace(/^<message /, "<message xmlns='jabber:client' ");
  const typeAttr = type === undefined ? '' : ` type='${type}'`;
  await gets(client, `<message from='alice@localhost' to='alice@localhost/${resource}'${typeAttr}><${kind} xmlns='${NS}'><forwarded xmlns='${FWD}'>${wrapped}</forwarded></${kind}></message>`);
}

async function quiet(...clients: ScriptedClient[]): Promise<void> {
  await Promise.all(clients.map((client) => client.expectNothing(250)));
}

async function setPriority(client: ScriptedClient, priority: number, alsoSeenBy: ScriptedClient[]): Promise<void> {
  client.send(`<presence><priority>${priority}</priority></presence>`);
  for (const other of [client, ...alsoSeenBy]) await other.expect(`<presence from='${client.jid}'/>`, { skip: true });
}

describe('message carbons (XEP-0280)', () => {
  let server: TestServer;
  let desk: ScriptedClient;
  let phone: ScriptedClient;
  let pager: ScriptedClient;
  let bob: ScriptedClient;
  const all = () => [desk, phone, pager, bob];

  before(async () => {
    server = await startTestServer();
    await server.addUser('alice', 'alice-secret');
    await server.addUser('bob', 'bob-secret');
    desk = await server.login('alice', 'alice-secret', { resource: 'desk' });
    phone = await server.login('alice', 'alice-secret', { resource: 'phone' });
    pager = await server.login('alice', 'alice-secret', { resource: 'pager' });
    bob = await server.login('bob', 'bob-secret', { resource: 'b' });
    for (const [client, priority] of [[desk, 5], [phone, 1], [pager, 1], [bob, 0]] as const) {
      client.send(`<presence><priority>${priority}</priority></presence>`);
      await client.expect(`<presence from='${client.jid}' to='${client.jid}'/>`, { skip: true });
    }
    for (const client of [desk, phone]) {
      const result = await client.iq(`<iq type='set' id='on'><enable xmlns='${NS}'/></iq>`, { skip: true });
      assertExact(result, `<iq type='result' id='on' to='${client.jid}'/>`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  });
  after(() => server?.stop());
  beforeEach(() => { for (const client of all()) client.clear(); });

  describe('enabling', () => {
    it('advertises urn:xmpp:carbons:2 on the server', async () => {
      const info = await pager.iq("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
      assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === NS));
    });

    it('answers enable and disable with a result however often they come, to the own bare JID too', async () => {
      for (const [id, action, to] of [['e1', 'enable', ''], ['e2', 'enable', " to='alice@localhost'"], ['e3', 'disable', ''], ['e4', 'disable', ''], ['e5', 'enable', '']] as const) {
        const result = await pager.iq(`<iq type='set' id='${id}'${to}><${action} xmlns='${NS}'/></iq>`);
        assert.equal(result.attrs.type, 'result', result.toString());
      }
      // pager is back to disabled for the other tests; nobody got anything meanwhile.
      const off = await pager.iq(`<iq type='set' id='e6'><disable xmlns='${NS}'/></iq>`);
      assert.equal(off.attrs.type, 'result');
      await quiet(desk, phone, bob);
    });

    it('does not let a user switch carbons for someone else', async () => {
      const result = await bob.iq(`<iq type='set' id='e7' to='alice@localhost'><enable xmlns='${NS}'/></iq>`);
      assert.equal(result.attrs.type, 'error');
      await quiet(desk, phone, pager);
    });
  });

  describe('received copies', () => {
    it('copies a message to the bare JID to the enabled resources that did not get it', async () => {
      bob.send("<message to='alice@localhost' type='chat' id='r1'><body>to the bare JID</body></message>");
      const original = "<message from='bob@localhost/b' to='alice@localhost' type='chat' id='r1'><body>to the bare JID</body></message>";
      await gets(desk, original);
      await getsCarbon(phone, 'received', original, 'chat');
      await quiet(desk, phone, pager, bob);
    });

    it('copies nothing to the resources that all got a message to the bare JID (equal priority)', async () => {
      await setPriority(phone, 5, [desk, pager]);
      try {
        bob.send("<message to='alice@localhost' type='chat' id='r2'><body>both</body></message>");
        const original = "<message from='bob@localhost/b' to='alice@localhost' type='chat' id='r2'><body>both</body></message>";
        await gets(desk, original);
        await gets(phone, original);
        await quiet(desk, phone, pager);
      } finally {
        await setPriority(phone, 1, [desk, pager]);
      }
    });

    it('copies a message to a resource without carbons to both enabled resources', async () => {
      bob.send("<message to='alice@localhost/pager' type='chat' id='r3'><body>to the pager</body></message>");
      const original = "<message from='bob@localhost/b' to='alice@localhost/pager' type='chat' id='r3'><body>to the pager</body></message>";
      await gets(pager, original);
      await getsCarbon(desk, 'received', original, 'chat');
      await getsCarbon(phone, 'received', original, 'chat');
      await quiet(desk, phone, pager, bob);
    });

    it('copies a message to an enabled resource to the other enabled one only', async () => {
      bob.send("<message to='alice@localhost/phone' id='r4'><body>to the phone</body></message>");
      const original = "<message from='bob@localhost/b' to='alice@localhost/phone' id='r4'><body>to the phone</body></message>";
      await gets(phone, original);
      await getsCarbon(desk, 'received', original);
      await quiet(desk, phone, pager);
    });

    it('copies a chat to a resource that is gone as a message to the bare JID', async () => {
      bob.send("<message to='alice@localhost/gone' type='chat' id='r5'><body>anyone there?</body></message>");
      const original = "<message from='bob@localhost/b' to='alice@localhost/gone' type='chat' id='r5'><body>anyone there?</body></message>";
      await gets(desk, original);
      await getsCarbon(phone, 'received', original, 'chat');
      await quiet(desk, phone, pager, bob);
    });
  });

  describe('sent copies', () => {
    it('copies what a resource without carbons sends to both enabled resources', async () => {
      pager.send("<message to='bob@localhost' type='chat' id='s1'><body>from the pager</body></message>");
      const original = "<message to='bob@localhost' type='chat' id='s1' from='alice@localhost/pager'><body>from the pager</body></message>";
      await gets(bob, original);
      await getsCarbon(desk, 'sent', original, 'chat');
      await getsCarbon(phone, 'sent', original, 'chat');
      await quiet(desk, phone, pager, bob);
    });

    it('copies what an enabled resource sends to the other enabled resource, not to itself', async () => {
      desk.send("<message to='bob@localhost/b' type='chat' id='s2'><body>from the desk</body></message>");
      const original = "<message to='bob@localhost/b' type='chat' id='s2' from='alice@localhost/desk'><body>from the desk</body></message>";
      await gets(bob, original);
      await getsCarbon(phone, 'sent', original, 'chat');
      await quiet(desk, phone, pager, bob);
    });
  });

  describe('between the user\'s own resources', () => {
    it('copies a message from one resource to another once, to the third', async () => {
      desk.send("<message to='alice@localhost/pager' type='chat' id='o1'><body>desk to pager</body></message>");
      const original = "<message to='alice@localhost/pager' type='chat' id='o1' from='alice@localhost/desk'><body>desk to pager</body></message>";
      await gets(pager, original);
      await getsCarbon(phone, 'received', original, 'chat');
      await quiet(desk, phone, pager);

      pager.send("<message to='alice@localhost/phone' type='chat' id='o2'><body>pager to phone</body></message>");
      const second = "<message to='alice@localhost/phone' type='chat' id='o2' from='alice@localhost/pager'><body>pager to phone</body></message>";
      await gets(phone, second);
      await getsCarbon(desk, 'received', second, 'chat');
      await quiet(desk, phone, pager);
    });

    it('copies a message to the own bare JID to the enabled resources other than sender and recipient', async () => {
      phone.send("<message to='alice@localhost' type='chat' id='o3'><body>note to self</body></message>");
      const original = "<message to='alice@localhost' type='chat' id='o3' from='alice@localhost/phone'><body>note to self</body></message>";
      await gets(desk, original);
      await quiet(desk, phone, pager);

      pager.send("<message type='chat' id='o4'><body>no to at all</body></message>");
      const second = "<message type='chat' id='o4' to='alice@localhost' from='alice@localhost/pager'><body>no to at all</body></message>";
      await gets(desk, second);
      await getsCarbon(phone, 'received', second, 'chat');
      await quiet(desk, phone, pager);
    });
  });

  describe('opting out', () => {
    it('copies nothing with <private/> either way, and leaves the element in the message', async () => {
      pager.send(`<message to='bob@localhost' type='chat' id='p1'><body>private</body><private xmlns='${NS}'/><no-copy xmlns='urn:xmpp:hints'/></message>`);
      await gets(bob, `<message to='bob@localhost' type='chat' id='p1' from='alice@localhost/pager'><body>private</body><private xmlns='${NS}'/><no-copy xmlns='urn:xmpp:hints'/></message>`);
      bob.send(`<message to='alice@localhost/pager' type='chat' id='p2'><body>private</body><private xmlns='${NS}'/></message>`);
      await gets(pager, `<message to='alice@localhost/pager' type='chat' id='p2' from='bob@localhost/b'><body>private</body><private xmlns='${NS}'/></message>`);
      await quiet(desk, phone, pager, bob);
    });

    it('copies nothing with the no-copy hint either way', async () => {
      desk.send("<message to='bob@localhost/b' type='chat' id='p3'><body>no copy</body><no-copy xmlns='urn:xmpp:hints'/></message>");
      await bob.expect("<message id='p3'/>");
      bob.send("<message to='alice@localhost/pager' type='chat' id='p4'><body>no copy</body><no-copy xmlns='urn:xmpp:hints'/></message>");
      await pager.expect("<message id='p4'/>");
      // To the bare JID the hint does not change delivery (XEP-0334 §4.2), only the copies.
      bob.send("<message to='alice@localhost' type='chat' id='p5'><body>no copy</body><no-copy xmlns='urn:xmpp:hints'/></message>");
      await desk.expect("<message id='p5'/>");
      await quiet(desk, phone, pager, bob);
    });
  });

  describe('which messages', () => {
    it('copies chat states, receipts and markers whatever the type', async () => {
      const cases = [
        ['c1', "type='chat'", "<composing xmlns='http://jabber.org/protocol/chatstates'/>"],
        ['c2', '', "<received xmlns='urn:xmpp:receipts' id='r1'/>"],
        ['c3', '', "<displayed xmlns='urn:xmpp:chat-markers:0' id='r1'/>"],
        ['c4', "type='headline'", "<request xmlns='urn:xmpp:receipts'/>"],
      ];
      for (const [id, type, payload] of cases) {
        bob.send(`<message to='alice@localhost/pager' ${type} id='${id}'>${payload}</message>`);
        const original = `<message to='alice@localhost/pager' ${type} id='${id}' from='bob@localhost/b'>${payload}</message>`;
        await gets(pager, original);
        const wrapperType = /type='(\w+)'/.exec(type)?.[1];
        await getsCarbon(desk, 'received', original, wrapperType);
        await getsCarbon(phone, 'received', original, wrapperType);
      }
      // Sent the same way; the copy of a typeless message is typeless too.
      pager.send("<message to='bob@localhost' id='c5'><received xmlns='urn:xmpp:receipts' id='r2'/></message>");
      const sent = "<message to='bob@localhost' id='c5' from='alice@localhost/pager'><received xmlns='urn:xmpp:receipts' id='r2'/></message>";
      await gets(bob, sent);
      await getsCarbon(desk, 'sent', sent);
      await getsCarbon(phone, 'sent', sent);
      await quiet(desk, phone, pager, bob);
    });

    it('copies normal messages with a body, not those without', async () => {
      bob.send("<message to='alice@localhost/pager' type='normal' id='n1'><subject>s</subject><body>normal</body></message>");
      const original = "<message to='alice@localhost/pager' type='normal' id='n1' from='bob@localhost/b'><subject>s</subject><body>normal</body></message>";
      await gets(pager, original);
      await getsCarbon(desk, 'received', original, 'normal');
      await getsCarbon(phone, 'received', original, 'normal');

      bob.send("<message to='alice@localhost/pager' id='n2'><subject>only a subject</subject></message>");
      await pager.expect("<message id='n2'/>");
      pager.send("<message to='bob@localhost' id='n3'><thread>t</thread></message>");
      await bob.expect("<message id='n3'/>");
      await quiet(desk, phone, pager, bob);
    });

    it('copies no headline: to the bare JID every available resource gets it', async () => {
      bob.send("<message to='alice@localhost' type='headline' id='h1'><body>news</body></message>");
      for (const client of [desk, phone, pager]) await client.expect("<message type='headline' id='h1' from='bob@localhost/b'/>");
      bob.send("<message to='alice@localhost/pager' type='headline' id='h2'><body>news</body></message>");
      await pager.expect("<message id='h2'/>");
      pager.send("<message to='bob@localhost' type='headline' id='h3'><body>news</body></message>");
      await bob.expect("<message id='h3'/>");
      await quiet(desk, phone, pager, bob);
    });

    it('copies no groupchat message', async () => {
      bob.send("<message to='alice@localhost/pager' type='groupchat' id='g1'><body>room</body></message>");
      await pager.expect("<message type='groupchat' id='g1'/>");
      bob.send("<message to='alice@localhost' type='groupchat' id='g2'><body>room</body></message>");
      await bob.expect(`<message type='error' id='g2'><error><service-unavailable xmlns='${STANZAS}'/></error></message>`);
      pager.send("<message to='bob@localhost/b' type='groupchat' id='g3'><body>room</body></message>");
      await bob.expect("<message type='groupchat' id='g3'/>");
      await quiet(desk, phone, pager, bob);
    });

    it('copies an error only when it answers a copied message', async () => {
      const error = `<error type='cancel'><service-unavailable xmlns='${STANZAS}'/></error>`;
      // Unrelated errors, either way: no copies.
      bob.send(`<message to='alice@localhost/pager' type='error' id='x1'>${error}</message>`);
      await pager.expect("<message type='error' id='x1'/>");
      pager.send(`<message to='bob@localhost/b' type='error' id='x2'>${error}</message>`);
      await bob.expect("<message type='error' id='x2'/>");
      await quiet(desk, phone, pager, bob);

      // bob's client refuses a copied message: the error is copied, in a typeless wrapper.
      pager.send("<message to='bob@localhost/b' type='chat' id='x3'><body>hello?</body></message>");
      await bob.expect("<message id='x3'/>");
      for (const client of [desk, phone]) await client.expect(`<message><sent xmlns='${NS}'/></message>`);
      bob.send(`<message to='alice@localhost/pager' type='error' id='x3'>${error}</message>`);
      const bounced = `<message to='alice@localhost/pager' type='error' id='x3' from='bob@localhost/b'>${error}</message>`;
      await gets(pager, bounced);
      await getsCarbon(desk, 'received', bounced);
      await getsCarbon(phone, 'received', bounced);
      // Only once.
      bob.send(`<message to='alice@localhost/pager' type='error' id='x3'>${error}</message>`);
      await pager.expect("<message type='error' id='x3'/>");
      await quiet(desk, phone, pager, bob);

      // alice's pager refuses a copied message from bob: its error is copied as sent.
      bob.send("<message to='alice@localhost/pager' type='chat' id='x4'><body>hello!</body></message>");
      await pager.expect("<message id='x4'/>");
      for (const client of [desk, phone]) await client.expect(`<message><received xmlns='${NS}'/></message>`);
      pager.send(`<message to='bob@localhost/b' type='error' id='x4'>${error}</message>`);
      const refusal = `<message to='bob@localhost/b' type='error' id='x4' from='alice@localhost/pager'>${error}</message>`;
      await gets(bob, refusal);
      await getsCarbon(desk, 'sent', refusal);
      await getsCarbon(phone, 'sent', refusal);
      await quiet(desk, phone, pager, bob);
    });
  });

  describe('MUC rules (recognised by the muc#user element)', () => {
    const MUC_USER = 'http://jabber.org/protocol/muc#user';

    it('copies no private message from an occupant', async () => {
      bob.send(`<message to='alice@localhost/pager' type='chat' id='m1'><body>psst</body><x xmlns='${MUC_USER}'/></message>`);
      await pager.expect("<message id='m1'/>");
      bob.send(`<message to='alice@localhost' type='chat' id='m2'><body>psst</body><x xmlns='${MUC_USER}'/></message>`);
      await desk.expect("<message id='m2'/>");
      await quiet(desk, phone, pager, bob);
    });

    it('copies a private message to an occupant, even without a body', async () => {
      pager.send(`<message to='bob@localhost/b' type='chat' id='m3'><body>psst</body><x xmlns='${MUC_USER}'/></message>`);
      const original = `<message to='bob@localhost/b' type='chat' id='m3' from='alice@localhost/pager'><body>psst</body><x xmlns='${MUC_USER}'/></message>`;
      await gets(bob, original);
      await getsCarbon(desk, 'sent', original, 'chat');
      await getsCarbon(phone, 'sent', original, 'chat');
      pager.send(`<message to='bob@localhost/b' id='m4'><x xmlns='${MUC_USER}'/></message>`);
      await bob.expect("<message id='m4'/>");
      for (const client of [desk, phone]) await client.expect(`<message><sent xmlns='${NS}'><forwarded xmlns='${FWD}'><message xmlns='jabber:client' id='m4'/></forwarded></sent></message>`);
      // To a room's bare JID and neither invitation nor body: nothing.
      pager.send(`<message to='bob@localhost' id='m5'><x xmlns='${MUC_USER}'><decline to='carol@localhost'/></x></message>`);
      await bob.expect("<message id='m5'/>");
      await quiet(desk, phone, pager, bob);
    });

    it('copies mediated and direct invitations either way', async () => {
      const mediated = `<x xmlns='${MUC_USER}'><invite from='carol@localhost'/></x>`;
      const direct = "<x xmlns='jabber:x:conference' jid='room@conference.localhost'/>";
      for (const [id, payload] of [['i1', mediated], ['i2', direct]]) {
        bob.send(`<message to='alice@localhost/pager' id='${id}'>${payload}</message>`);
        const original = `<message to='alice@localhost/pager' id='${id}' from='bob@localhost/b'>${payload}</message>`;
        await gets(pager, original);
        await getsCarbon(desk, 'received', original);
        await getsCarbon(phone, 'received', original);
      }
      pager.send(`<message to='bob@localhost' id='i3'><x xmlns='${MUC_USER}'><invite to='carol@localhost'/></x></message>`);
      await bob.expect("<message id='i3'/>");
      for (const client of [desk, phone]) await client.expect(`<message><sent xmlns='${NS}'><forwarded xmlns='${FWD}'><message xmlns='jabber:client' id='i3'/></forwarded></sent></message>`);
      await quiet(desk, phone, pager, bob);
    });
  });

  it('delivers a carbon forged by someone else as an ordinary message, copied to nobody', async () => {
    // The client must ignore it: its `from` is bob, not alice's bare JID (§11).
    const forged = `<received xmlns='${NS}'><forwarded xmlns='${FWD}'><message xmlns='jabber:client' from='carol@localhost/x' to='alice@localhost' type='chat'><body>trust me</body></message></forwarded></received>`;
    bob.send(`<message to='alice@localhost' type='chat' id='f1'>${forged}</message>`);
    await gets(desk, `<message to='alice@localhost' type='chat' id='f1' from='bob@localhost/b'>${forged}</message>`);
    await quiet(desk, phone, pager, bob);
  });

  it('stops copying to a resource that disables carbons', async () => {
    const result = await phone.iq(`<iq type='set' id='off'><disable xmlns='${NS}'/></iq>`);
    assertExact(result, "<iq type='result' id='off' to='alice@localhost/phone'/>");
    pager.send("<message to='bob@localhost' type='chat' id='d1'><body>after disable</body></message>");
    await bob.expect("<message id='d1'/>");
    await desk.expect(`<message><sent xmlns='${NS}'/></message>`);
    bob.send("<message to='alice@localhost/pager' type='chat' id='d2'><body>after disable</body></message>");
    await pager.expect("<message id='d2'/>");
    await desk.expect(`<message><received xmlns='${NS}'/></message>`);
    await quiet(desk, phone, pager, bob);
  });
});

describe('message carbons and unavailable resources', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
    await server.addUser('alice', 'alice-secret');
    await server.addUser('bob', 'bob-secret');
  });
  after(() => server?.stop());

  it('copies to an enabled resource of negative priority, and nothing while the message waits offline', async () => {
    const main = await server.login('alice', 'alice-secret', { resource: 'main' });
    const lurker = await server.login('alice', 'alice-secret', { resource: 'lurker' });
    const bob = await server.login('bob', 'bob-secret', { resource: 'b' });
    await setPriority(main, 0, []);
    await setPriority(lurker, -1, []);
    assert.equal((await lurker.iq(`<iq type='set' id='on'><enable xmlns='${NS}'/></iq>`, { skip: true })).attrs.type, 'result');
    main.clear();
    lurker.clear();

    bob.send("<message to='alice@localhost' type='chat' id='u1'><body>hi</body></message>");
    const original = "<message to='alice@localhost' type='chat' id='u1' from='bob@localhost/b'><body>hi</body></message>";
    await gets(main, original);
    await getsCarbon(lurker, 'received', original, 'chat');

    await main.close();
    await lurker.expect("<presence type='unavailable' from='alice@localhost/main'/>", { skip: true });
    bob.send("<message to='alice@localhost' type='chat' id='u2'><body>later</body></message>");
    await Promise.all([lurker.expectNothing(300), bob.expectNothing(300)]);
    lurker.clear();

    // Stored once, delivered once: to the next resource that can take it.
    const back = await server.login('alice', 'alice-secret', { resource: 'back' });
    back.send('<presence/>');
    await back.expect("<message id='u2' from='bob@localhost/b'><body>later</body><delay xmlns='urn:xmpp:delay'/></message>", { skip: true });
    await lurker.expectNothing(300).catch(() => undefined);
    assert.equal(lurker.clear().filter((e) => e.getName() === 'message').length, 0);
  });

  it('drops a copy its session could not take instead of storing it offline', async () => {
    // What stream management does with a message a dead session left unacknowledged.
    await server.addUser('carol', 'carol-secret');
    const carol = { username: 'carol', domain: 'localhost' };
    const hooks = server.server.router.hosts.get('localhost')!.hooks;
    const to = parseJid('carol@localhost');
    const forwarded = () => el('forwarded', { xmlns: FWD },
      el('message', { xmlns: 'jabber:client', from: 'bob@localhost/b', to: 'carol@localhost', type: 'chat' }, el('body', {}, 'hi')));
    const copy = el('message', { from: 'carol@localhost', to: 'carol@localhost/gone', type: 'chat' }, el('received', { xmlns: NS }, forwarded()));
    assert.equal(await hooks.fire('message:offline', { stanza: copy, to }), true);
    assert.equal(await server.server.storage.offline.count(carol), 0);
    // A "carbon" from anyone else is an ordinary message (the client ignores it, §11): stored.
    const forged = el('message', { from: 'bob@localhost/b', to: 'carol@localhost', type: 'chat' }, el('received', { xmlns: NS }, forwarded()));
    assert.equal(await hooks.fire('message:offline', { stanza: forged, to }), true);
    assert.equal(await server.server.storage.offline.count(carol), 1);
  });

  it('keeps the setting per session: a new session on the same resource starts without carbons', async () => {
    const desk = await server.login('bob', 'bob-secret', { resource: 'desk' });
    const phone = await server.login('bob', 'bob-secret', { resource: 'phone' });
    const alice = await server.login('alice', 'alice-secret', { resource: 'a' });
    assert.equal((await phone.iq(`<iq type='set' id='on'><enable xmlns='${NS}'/></iq>`, { skip: true })).attrs.type, 'result');
    desk.send("<message to='alice@localhost/a' type='chat' id='k1'><body>one</body></message>");
    await phone.expect(`<message from='bob@localhost'><sent xmlns='${NS}'/></message>`, { skip: true });

    await phone.close();
    const again = await server.login('bob', 'bob-secret', { resource: 'phone' });
    desk.send("<message to='alice@localhost/a' type='chat' id='k2'><body>two</body></message>");
    await alice.expect("<message id='k2'/>", { skip: true });
    await again.expectNothing(300).catch(() => undefined);
    assert.equal(again.clear().filter((e) => e.getName() === 'message').length, 0);
  });
});
