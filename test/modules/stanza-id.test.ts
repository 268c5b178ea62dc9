/**
 * XEP-0359 stanza ids, assigned by the archive (mam module) on both storage backends: each
 * side of a conversation gets the id of its own archive; a <stanza-id/> a sender forged in
 * this server's name is removed, archived message or not; <origin-id/> and other entities'
 * ids stay; ids are unique and sort as time goes, also within one millisecond and when the
 * clock goes back.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Element } from 'ltx';
import { startTestServer, type ScriptedClient, type TestServer } from '../support/index.ts';
import { StanzaIdGenerator } from '../../src/modules/mam/stanza-id.ts';
import { assertExact } from './exact.ts';

const SID = 'urn:xmpp:sid:0';
const MAM = 'urn:xmpp:mam:2';
const ID_FORMAT = /^[0-9a-hjkmnp-tv-z]{21}$/;

describe('stanza id generator', () => {
  it('makes fixed-width ids whose string order is time order', () => {
    const ids = new StanzaIdGenerator();
    const made = [ids.next(1000), ids.next(1000), ids.next(1000), ids.next(1001), ids.next(999), ids.next(5000)];
    for (const { id } of made) assert.match(id, ID_FORMAT);
    const strings = made.map((m) => m.id);
    assert.deepEqual([...strings].sort(), strings);
    assert.equal(new Set(strings).size, strings.length);
    // The clock going back does not make ids go back: the timestamp stays where it was.
    assert.deepEqual(made.map((m) => m.timestamp), [1000, 1000, 1000, 1001, 1001, 5000]);
  });

  it('borrows the next millisecond after 32768 ids in one', () => {
    const ids = new StanzaIdGenerator();
    let last = ids.next(7);
    for (let i = 1; i < 32768; i++) {
      const next = ids.next(7);
      assert.ok(next.id > last.id);
      last = next;
    }
    assert.equal(last.timestamp, 7);
    const overflow = ids.next(7);
    assert.equal(overflow.timestamp, 8);
    assert.ok(overflow.id > last.id);
    assert.ok(ids.next(8).id > overflow.id);
  });

  it('does not reveal how many ids were made: the sequence restarts every millisecond', () => {
    const ids = new StanzaIdGenerator();
    for (let i = 0; i < 100; i++) ids.next(50);
    const a = ids.next(51).id;
    const fresh = new StanzaIdGenerator().next(51).id;
    assert.equal(a.slice(0, 13), fresh.slice(0, 13));
  });
});

for (const storage of ['sqlite', 'postgres'] as const) {
  describe(`stanza ids (${storage})`, () => {
    let server: TestServer;
    let alice: ScriptedClient;
    let bob: ScriptedClient;
    let bobTablet: ScriptedClient;

    before(async () => {
      server = await startTestServer({ storage, toml: '[modules.mam]\n' });
      await server.addUser('alice', 'alice-secret');
      await server.addUser('bob', 'bob-secret');
      alice = await server.login('alice', 'alice-secret', { resource: 'desk' });
      bob = await server.login('bob', 'bob-secret', { resource: 'phone' });
      bobTablet = await server.login('bob', 'bob-secret', { resource: 'tablet' });
      for (const [client, priority] of [[alice, 0], [bob, 5], [bobTablet, 1]] as const) {
        client.send(`<presence><priority>${priority}</priority></presence>`);
        await client.expect(`<presence from='${client.jid}' to='${client.jid}'/>`, { skip: true });
      }
      await bobTablet.iq("<iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>", { skip: true });
      bob.clear();
      bobTablet.clear();
    });
    after(() => server?.stop());

    /** The archive entry (result id and forwarded message) of the message with this id. */
    async function archived(client: ScriptedClient, messageId: string): Promise<{ id: string; message: Element }> {
      const queryId = client.id('mam');
      client.send(`<iq type='set' id='${queryId}'><query xmlns='${MAM}'/></iq>`);
      const found: { id: string; message: Element }[] = [];
      for (;;) {
        const element = await client.next();
        if (element.name === 'iq' && element.attrs.id === queryId) break;
        const result = element.getChild('result', MAM);
        if (result === undefined) continue;
        const message = result.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!;
        if (message.attrs.id === messageId) found.push({ id: result.attrs.id, message });
      }
      assert.equal(found.length, 1, `one archived copy of ${messageId}`);
      return found[0];
    }

    const stanzaIdOf = (message: Element, by: string): string => {
      const ids = message.getChildren('stanza-id', SID).filter((e) => e.attrs.by === by);
      assert.equal(ids.length, 1, `one stanza-id by ${by} in ${message.toString()}`);
      return ids[0].attrs.id;
    };

    it('is advertised on accounts', async () => {
      const info = await alice.iq("<iq type='get' id='disco' to='bob@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
      assert.equal(info.attrs.type, 'error', 'alice may not see bob\'s account (no subscription)');
      const own = await alice.iq("<iq type='get' id='disco2' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
      const features = own.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      assert.ok(features.includes(SID), own.toString());
    });

    it('gives each side the id of its own archive, also in carbon copies', async () => {
      alice.send("<message to='bob@localhost' type='chat' id='s1'><body>one</body><origin-id xmlns='urn:xmpp:sid:0' id='o-1'/></message>");
      const got = await bob.expect("<message id='s1'/>");
      assertExact(got, "<message from='alice@localhost/desk' to='bob@localhost' type='chat' id='s1'><body>one</body><origin-id xmlns='urn:xmpp:sid:0' id='o-1'/><stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='{{any}}'/></message>");
      const bobsId = stanzaIdOf(got, 'bob@localhost');
      assert.match(bobsId, ID_FORMAT);

      const carbon = await bobTablet.expect("<message from='bob@localhost'/>");
      const copy = carbon.getChild('received', 'urn:xmpp:carbons:2')!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!;
      assert.equal(stanzaIdOf(copy, 'bob@localhost'), bobsId);

      const bobs = await archived(bob, 's1');
      assert.equal(bobs.id, bobsId);
      const alices = await archived(alice, 's1');
      assert.notEqual(alices.id, bobsId);
      assert.equal(stanzaIdOf(alices.message, 'alice@localhost'), alices.id);
      assert.equal(alices.message.getChildren('stanza-id', SID).length, 1);
      assert.equal(alices.message.getChild('origin-id', SID)!.attrs.id, 'o-1');
    });

    it('removes ids forged in this server\'s name, and keeps other entities\' ids', async () => {
      alice.send(`<message to='bob@localhost/phone' type='chat' id='s2'><body>two</body>
        <stanza-id xmlns='${SID}' by='bob@localhost' id='forged-for-bob'/>
        <stanza-id xmlns='${SID}' by='alice@localhost' id='forged-for-alice'/>
        <stanza-id xmlns='${SID}' by='LOCALHOST' id='forged-for-the-server'/>
        <stanza-id xmlns='${SID}' by='bob@localhost/tablet' id='forged-for-a-resource'/>
        <stanza-id xmlns='${SID}' by='room@conference.example.org' id='theirs'/>
        <origin-id xmlns='${SID}' id='o-2'/></message>`);
      const got = await bob.expect("<message id='s2'/>");
      assertExact(got, `<message from='alice@localhost/desk' to='bob@localhost/phone' type='chat' id='s2'><body>two</body><stanza-id xmlns='${SID}' by='room@conference.example.org' id='theirs'/><origin-id xmlns='${SID}' id='o-2'/><stanza-id xmlns='${SID}' by='bob@localhost' id='{{any}}'/></message>`);
      assert.notEqual(stanzaIdOf(got, 'bob@localhost'), 'forged-for-bob');
      const alices = await archived(alice, 's2');
      assert.equal(stanzaIdOf(alices.message, 'alice@localhost'), alices.id);
      assert.equal(alices.message.getChildren('stanza-id', SID).length, 2);
    });

    it('removes forged ids from messages that are not archived', async () => {
      alice.send(`<message to='bob@localhost/phone' type='headline' id='s3'><body>news</body><stanza-id xmlns='${SID}' by='bob@localhost' id='forged'/></message>`);
      assertExact(await bob.expect("<message id='s3'/>"), "<message from='alice@localhost/desk' to='bob@localhost/phone' type='headline' id='s3'><body>news</body></message>");
      alice.send(`<message to='bob@localhost/phone' type='chat' id='s4'><composing xmlns='http://jabber.org/protocol/chatstates'/><stanza-id xmlns='${SID}' by='bob@localhost' id='forged'/></message>`);
      assertExact(await bob.expect("<message id='s4'/>"), "<message from='alice@localhost/desk' to='bob@localhost/phone' type='chat' id='s4'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    });

    it('assigns ids that increase message after message', async () => {
      for (let n = 0; n < 20; n++) alice.send(`<message to='bob@localhost/phone' type='chat' id='seq${n}'><body>${n}</body></message>`);
      const ids: string[] = [];
      for (let n = 0; n < 20; n++) ids.push(stanzaIdOf(await bob.expect(`<message id='seq${n}'/>`), 'bob@localhost'));
      assert.deepEqual([...ids].sort(), ids);
      assert.equal(new Set(ids).size, 20);
    });
  });
}

describe('stanza ids without the archive', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.stop());

  it('adds none and advertises none', async () => {
    await server.addUser('alice', 'a');
    await server.addUser('bob', 'b');
    const alice = await server.login('alice', 'a', { resource: 'desk' });
    const bob = await server.login('bob', 'b', { resource: 'phone' });
    alice.send("<message to='bob@localhost/phone' type='chat' id='plain'><body>hi</body></message>");
    assertExact(await bob.expect("<message id='plain'/>"), "<message from='alice@localhost/desk' to='bob@localhost/phone' type='chat' id='plain'><body>hi</body></message>");
    const own = await alice.iq("<iq type='get' id='disco' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    const features = own.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(!features.includes(SID) && !features.includes(MAM), own.toString());
  });
});
