/**
 * XEP-0352 client state indication: while alice's client is inactive, her contacts'
 * presence updates and chat states are held and collapsed (the latest per contact); a
 * message with a body flushes them in order ahead of itself; <active/> flushes the rest.
 * With XEP-0198, held stanzas are counted only once sent, and a resumed stream is active.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';

const NS = 'urn:xmpp:csi:0';
const NS_SM = 'urn:xmpp:sm:3';

describe('client state indication (XEP-0352)', () => {
  let server: TestServer;
  let alice: ScriptedClient;
  let bob: ScriptedClient;
  let carol: ScriptedClient;

  before(async () => {
    server = await startTestServer();
    for (const name of ['alice', 'bob', 'carol']) await server.addUser(name, `${name}-secret`);
    const ref = (username: string) => ({ username, domain: 'localhost' });
    for (const [x, y] of [['alice', 'bob'], ['alice', 'carol']]) {
      await server.server.storage.roster.put(ref(x), { jid: `${y}@localhost`, subscription: 'both', askOut: false, askIn: false, groups: [] });
      await server.server.storage.roster.put(ref(y), { jid: `${x}@localhost`, subscription: 'both', askOut: false, askIn: false, groups: [] });
    }
    bob = await server.login('bob', 'bob-secret', { resource: 'b' });
    carol = await server.login('carol', 'carol-secret', { resource: 'c' });
    alice = await server.login('alice', 'alice-secret', { resource: 'phone' });
    for (const client of [bob, carol, alice]) {
      client.send('<presence/>');
      await client.expect(`<presence from='${client.jid}' to='${client.jid}'/>`, { skip: true });
    }
    await alice.expect("<presence from='bob@localhost/b'/>", { skip: true });
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const client of [bob, carol, alice]) client.clear();
  });
  after(() => server?.stop());

  it('is advertised as a stream feature after authentication', () => {
    assert.ok(alice.features().getChild('csi', NS), alice.features().toString());
  });

  it('holds presence and chat states while inactive and flushes them, collapsed and in order, before a message', async () => {
    alice.send(`<inactive xmlns='${NS}'/>`);
    bob.send('<presence><show>away</show></presence>');
    carol.send('<presence><show>xa</show></presence>');
    bob.send('<presence><show>dnd</show></presence>');
    bob.send("<message to='alice@localhost' type='chat' id='cs1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    bob.send("<message to='alice@localhost' type='chat' id='cs2'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>");
    await alice.expectNothing(400);

    bob.send("<message to='alice@localhost' type='chat' id='m1'><body>urgent: bed 7</body></message>");
    await alice.expect("<presence from='carol@localhost/c'><show>xa</show></presence>");
    await alice.expect("<presence from='bob@localhost/b'><show>dnd</show></presence>");
    await alice.expect("<message id='cs2'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>");
    await alice.expect("<message id='m1'><body>urgent: bed 7</body></message>");
    await alice.expectNothing(200);
  });

  it('flushes what it held when the client becomes active, and then stops holding', async () => {
    alice.send(`<inactive xmlns='${NS}'/>`);
    carol.send('<presence><show>chat</show></presence>');
    await alice.expectNothing(300);
    alice.send(`<active xmlns='${NS}'/>`);
    await alice.expect("<presence from='carol@localhost/c'><show>chat</show></presence>");
    bob.send('<presence/>');
    await alice.expect("<presence from='bob@localhost/b'/>");
  });

  it('keeps what it holds when told twice that the client is inactive', async () => {
    alice.send(`<inactive xmlns='${NS}'/>`);
    carol.send('<presence><show>away</show></presence>');
    await alice.expectNothing(200);
    alice.send(`<inactive xmlns='${NS}'/>`);
    await alice.expectNothing(200);
    alice.send(`<active xmlns='${NS}'/>`);
    await alice.expect("<presence from='carol@localhost/c'><show>away</show></presence>");
  });

  it('lets an IQ result through at once while inactive, after what was held', async () => {
    alice.send(`<inactive xmlns='${NS}'/>`);
    bob.send('<presence><show>away</show></presence>');
    await alice.expectNothing(200);
    alice.send("<iq type='get' id='ping' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await alice.expect("<presence from='bob@localhost/b'><show>away</show></presence>");
    await alice.expect("<iq type='result' id='ping'/>");
    alice.send(`<active xmlns='${NS}'/>`);
    await alice.expectNothing(200);
  });

  it('with stream management: held stanzas are not counted until they go out, and a resumed stream starts active', async () => {
    await server.addUser('dave', 'dave-secret');
    const ref = (username: string) => ({ username, domain: 'localhost' });
    await server.server.storage.roster.put(ref('dave'), { jid: 'bob@localhost', subscription: 'both', askOut: false, askIn: false, groups: [] });
    await server.server.storage.roster.put(ref('bob'), { jid: 'dave@localhost', subscription: 'both', askOut: false, askIn: false, groups: [] });
    const dave = await server.login('dave', 'dave-secret', { resource: 'phone' });
    dave.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
    const previd = (await dave.expect(`<enabled xmlns='${NS_SM}'/>`)).attrs.id as string;
    dave.send('<presence/>');
    const isStanza = (e: { getName(): string }) => ['message', 'presence', 'iq'].includes(e.getName());
    let h = 0;
    for (;;) {
      const element = await dave.next();
      if (isStanza(element)) h++;
      if (element.getName() === 'presence' && element.attrs.from === 'bob@localhost/b') break;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    h += dave.clear().filter(isStanza).length;
    dave.send(`<a xmlns='${NS_SM}' h='${h}'/><inactive xmlns='${NS}'/>`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    bob.send('<presence><show>dnd</show></presence>');
    bob.send("<message to='dave@localhost' type='chat' id='d1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    await dave.expectNothing(300);

    dave.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    bob.send('<presence><show>xa</show></presence>'); // held while the session hibernates, replacing dnd
    await new Promise((resolve) => setTimeout(resolve, 100));
    const phone = await server.connect({ name: 'dave (resuming)' });
    await phone.login('dave', 'dave-secret');
    // Had the held stanzas been counted as sent, the server would now retransmit them.
    phone.send(`<resume xmlns='${NS_SM}' previd='${previd}' h='${h}'/>`);
    await phone.expect(`<resumed xmlns='${NS_SM}' previd='${previd}' h='1'/>`);
    await phone.expect("<message id='d1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    await phone.expect("<presence from='bob@localhost/b'><show>xa</show></presence>");
    await phone.expect(`<r xmlns='${NS_SM}'/>`);
    phone.send(`<a xmlns='${NS_SM}' h='${h + 2}'/>`);
    bob.send('<presence><show>chat</show></presence>');
    await phone.expect("<presence from='bob@localhost/b'><show>chat</show></presence>");
    await phone.close();
  });
});
