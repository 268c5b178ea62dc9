/**
 * XEP-0280 message carbons: alice has three resources (desk and phone enable carbons, pager
 * does not), bob one. Every copy is checked exactly, including its bare-JID `from`.
 */
import { strict as assert } from 'node:assert';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';

const NS = 'urn:xmpp:carbons:2';
const FWD = 'urn:xmpp:forward:0';

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
      assert.equal(result.attrs.type, 'result', result.toString());
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  });
  after(() => server?.stop());
  beforeEach(() => { for (const client of all()) client.clear(); });

  async function quiet(...clients: ScriptedClient[]): Promise<void> {
    await Promise.all(clients.map((client) => client.expectNothing(250)));
  }

  it('advertises urn:xmpp:carbons:2 on the server', async () => {
    const info = await pager.iq("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === NS));
  });

  it('copies a message to the bare JID as <received/> to enabled resources that did not get it', async () => {
    bob.send("<message to='alice@localhost' type='chat' id='r1'><body>to the bare JID</body></message>");
    await desk.expect("<message from='bob@localhost/b' to='alice@localhost' type='chat' id='r1'><body>to the bare JID</body></message>");
    await phone.expect(`<message from='alice@localhost' to='alice@localhost/phone' type='chat'><received xmlns='${NS}'><forwarded xmlns='${FWD}'><message xmlns='jabber:client' from='bob@localhost/b' to='alice@localhost' type='chat' id='r1'><body>to the bare JID</body></message></forwarded></received></message>`);
    await quiet(desk, phone, pager);
  });

  it('copies a message to one full JID to the other enabled resources', async () => {
    bob.send("<message to='alice@localhost/pager' type='chat' id='r2'><body>to the pager</body></message>");
    await pager.expect("<message from='bob@localhost/b' id='r2'/>");
    await desk.expect(`<message from='alice@localhost' to='alice@localhost/desk'><received xmlns='${NS}'><forwarded xmlns='${FWD}'><message xmlns='jabber:client' id='r2'/></forwarded></received></message>`);
    await phone.expect(`<message from='alice@localhost' to='alice@localhost/phone'><received xmlns='${NS}'/></message>`);
    await quiet(desk, phone, pager);
  });

  it('copies what one resource sends as <sent/> to the other enabled resources', async () => {
    pager.send("<message to='bob@localhost' type='chat' id='s1'><body>from the pager</body></message>");
    await bob.expect("<message from='alice@localhost/pager' id='s1'/>");
    await desk.expect(`<message from='alice@localhost' to='alice@localhost/desk' type='chat'><sent xmlns='${NS}'><forwarded xmlns='${FWD}'><message xmlns='jabber:client' from='alice@localhost/pager' to='bob@localhost' type='chat' id='s1'><body>from the pager</body></message></forwarded></sent></message>`);
    await phone.expect(`<message from='alice@localhost'><sent xmlns='${NS}'/></message>`);
    await quiet(desk, phone, pager);

    desk.send("<message to='bob@localhost' type='chat' id='s2'><body>from the desk</body></message>");
    await bob.expect("<message id='s2'/>");
    await phone.expect(`<message><sent xmlns='${NS}'><forwarded xmlns='${FWD}'><message xmlns='jabber:client' id='s2'/></forwarded></sent></message>`);
    await quiet(desk, pager);
  });

  it('copies nothing marked private or no-copy', async () => {
    pager.send(`<message to='bob@localhost' type='chat' id='p1'><body>private</body><private xmlns='${NS}'/></message>`);
    await bob.expect("<message id='p1'/>");
    bob.send("<message to='alice@localhost' type='chat' id='p2'><body>no copy</body><no-copy xmlns='urn:xmpp:hints'/></message>");
    await desk.expect("<message id='p2'/>");
    await quiet(desk, phone, pager);
  });

  it('copies chat states and normal messages with a body, but not headlines, groupchat or bodiless normal messages', async () => {
    bob.send("<message to='alice@localhost' type='chat' id='c1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    await desk.expect("<message id='c1'/>");
    await phone.expect(`<message><received xmlns='${NS}'><forwarded xmlns='${FWD}'><message xmlns='jabber:client' id='c1'/></forwarded></received></message>`);
    bob.send("<message to='alice@localhost/pager' id='n1'><body>normal</body></message>");
    await pager.expect("<message id='n1'/>");
    await desk.expect(`<message><received xmlns='${NS}'><forwarded xmlns='${FWD}'><message xmlns='jabber:client' id='n1'/></forwarded></received></message>`);
    await phone.expect(`<message><received xmlns='${NS}'/></message>`);

    bob.send("<message to='alice@localhost/pager' id='n2'><subject>only a subject</subject></message>");
    await pager.expect("<message id='n2'/>");
    bob.send("<message to='alice@localhost' type='headline' id='h1'><body>news</body></message>");
    for (const client of [desk, phone, pager]) await client.expect("<message type='headline' id='h1'/>");
    await quiet(desk, phone, pager);
  });

  it('stops copying after disable', async () => {
    const result = await phone.iq(`<iq type='set' id='off'><disable xmlns='${NS}'/></iq>`);
    assert.equal(result.attrs.type, 'result');
    pager.send("<message to='bob@localhost' type='chat' id='x1'><body>after disable</body></message>");
    await bob.expect("<message id='x1'/>");
    await desk.expect(`<message><sent xmlns='${NS}'/></message>`);
    await quiet(phone, pager);
  });
});
