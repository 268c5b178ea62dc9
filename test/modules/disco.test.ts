/**
 * XEP-0030 service discovery for the server and for accounts (with the §8 access rules), and
 * XEP-0115 entity capabilities: the verification string against the XEP's examples, the
 * stream feature, and the caps node.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { Element } from 'ltx';
import { type ScriptedClient, type TestServer, startTestServer } from '../support/index.ts';
import { capsString, capsVer } from '../../src/modules/disco/caps.ts';
import { SERVER_NAME } from '../../src/server.ts';
import { assertExact, iqError } from './exact.ts';

const INFO = 'http://jabber.org/protocol/disco#info';
const ITEMS = 'http://jabber.org/protocol/disco#items';
const CAPS = 'http://jabber.org/protocol/caps';
const CAPS_NODE = 'https://meerkat.invalid';
const PW = 'a-long-password';

describe('XEP-0115 verification string', () => {
  it('reproduces the simple generation example (§5.2)', () => {
    const identities = [{ category: 'client', type: 'pc', name: 'Exodus 0.9.1' }];
    const features = ['http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/muc', CAPS];
    assert.equal(
      capsString(identities, features),
      'client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<',
    );
    assert.equal(capsVer(identities, features), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
  });

  it('reproduces the complex generation example (§5.3): languages and an extended form', () => {
    const identities = [
      { category: 'client', type: 'pc', lang: 'en', name: 'Psi 0.11' },
      { category: 'client', type: 'pc', lang: 'el', name: 'Ψ 0.11' },
    ];
    const features = [CAPS, 'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/muc'];
    const forms = [{
      formType: 'urn:xmpp:dataforms:softwareinfo',
      fields: [
        { var: 'FORM_TYPE', values: ['urn:xmpp:dataforms:softwareinfo'] },
        { var: 'software_version', values: ['0.11'] },
        { var: 'ip_version', values: ['ipv6', 'ipv4'] },
        { var: 'os', values: ['Mac'] },
        { var: 'os_version', values: ['10.5.1'] },
        { var: 'software', values: ['Psi'] },
      ],
    }];
    assert.equal(capsVer(identities, features, forms), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
  });

  it('sorts by UTF-8 octets, not UTF-16 code units', () => {
    // U+FFFD is EF BF BD in UTF-8, U+1F600 is F0 9F 98 80: octet order puts U+FFFD first,
    // although its UTF-16 unit (FFFD) sorts after the surrogate D83D.
    assert.equal(capsString([{ category: 'a', type: 'b' }], ['x\u{1F600}', 'x\uFFFD']), 'a/b//<x\uFFFD<x\u{1F600}<');
    assert.equal(capsString([{ category: 'c', type: 'b' }, { category: 'c', type: 'a', name: 'z' }], []), 'c/a//z<c/b//<');
  });
});

describe('XEP-0030 service discovery', () => {
  let server: TestServer;
  let alice: ScriptedClient;
  let bob: ScriptedClient;
  let carol: ScriptedClient;
  let dave: ScriptedClient;
  const host = 'localhost';

  before(async () => {
    server = await startTestServer({
      toml: '[[listen.c2s]]\nport = 0\naddress = "127.0.0.1"\nmax_connections_per_address = 1000\n',
      listeners: ['starttls'],
    });
    for (const name of ['alice', 'bob', 'carol', 'dave']) await server.addUser(name, PW);
    const bobRef = { username: 'bob', domain: host };
    // Alice receives Bob's presence; Dave is on Bob's roster but does not receive it.
    await server.server.storage.roster.put(bobRef, { jid: `alice@${host}`, subscription: 'from', askOut: false, askIn: false, groups: [] });
    await server.server.storage.roster.put(bobRef, { jid: `dave@${host}`, subscription: 'to', askOut: false, askIn: false, groups: [] });
    alice = await server.login('alice', PW, { resource: 'desk' });
    bob = await server.login('bob', PW, { resource: 'phone' });
    carol = await server.login('carol', PW, { resource: 'home' });
    dave = await server.login('dave', PW, { resource: 'work' });
  });
  after(() => server.stop());

  const hostInfo = () => server.server.router.hosts.get(host)!.discoInfo('host');

  function infoPattern(info: { identities: { category: string; type: string; name?: string }[]; features: string[] }, node?: string): string {
    const identities = info.identities.map((i) => `<identity category='${i.category}' type='${i.type}'${i.name === undefined ? '' : ` name='${i.name}'`}/>`).join('');
    const features = info.features.map((f) => `<feature var='${f}'/>`).join('');
    return `<query xmlns='${INFO}'${node === undefined ? '' : ` node='${node}'`}>${identities}${features}</query>`;
  }

  describe('the server', () => {
    it('lists its identity and the features of every enabled module', async () => {
      const reply = await alice.iq(`<iq type='get' id='i1' to='${host}'><query xmlns='${INFO}'/></iq>`);
      const info = hostInfo();
      assert.deepEqual(info.identities, [{ category: 'server', type: 'im', name: SERVER_NAME }]);
      for (const feature of [INFO, ITEMS, 'urn:xmpp:ping', 'jabber:iq:version', 'urn:xmpp:time', 'jabber:iq:last', 'vcard-temp', 'urn:xmpp:blocking']) {
        assert.ok(info.features.includes(feature), `${feature} advertised`);
      }
      assertExact(reply, `<iq type='result' id='i1' from='${host}' to='${alice.jid}'>${infoPattern(info)}</iq>`);
    });

    it('offers entity capabilities as a stream feature, matching its disco#info (§6.3)', async () => {
      const c = alice.features().getChild('c', CAPS);
      assert.ok(c, 'a caps stream feature after authentication');
      const reply = await alice.iq(`<iq type='get' id='i2' to='${host}'><query xmlns='${INFO}'/></iq>`);
      const query = reply.getChild('query', INFO)!;
      const identities = query.getChildren('identity').map((i: Element) => ({ category: i.attrs.category, type: i.attrs.type, name: i.attrs.name }));
      const features = query.getChildren('feature').map((f: Element) => f.attrs.var as string);
      assert.deepEqual(c.attrs, { xmlns: CAPS, hash: 'sha-1', node: CAPS_NODE, ver: capsVer(identities, features) });
    });

    it('answers disco#info for the caps node with the same information, mirroring the node', async () => {
      const node = `${CAPS_NODE}#${alice.features().getChild('c', CAPS)!.attrs.ver}`;
      const reply = await alice.iq(`<iq type='get' id='i3' to='${host}'><query xmlns='${INFO}' node='${node}'/></iq>`);
      assertExact(reply, `<iq type='result' id='i3' from='${host}' to='${alice.jid}'>${infoPattern(hostInfo(), node)}</iq>`);
    });

    it('refuses other info nodes, a stale caps node included, with <item-not-found/>', async () => {
      for (const node of ['http://jabber.org/protocol/commands', `${CAPS_NODE}#AAAAAAAAAAAAAAAAAAAAAAAAAAA=`]) {
        const reply = await alice.iq(`<iq type='get' id='i4' to='${host}'><query xmlns='${INFO}' node='${node}'/></iq>`);
        assertExact(reply, iqError({ id: 'i4', from: host, to: alice.jid, type: 'cancel', condition: 'item-not-found' }));
      }
    });

    it('has no items yet; item nodes are <item-not-found/>', async () => {
      assertExact(await alice.iq(`<iq type='get' id='i5' to='${host}'><query xmlns='${ITEMS}'/></iq>`), `<iq type='result' id='i5' from='${host}' to='${alice.jid}'><query xmlns='${ITEMS}'/></iq>`);
      const reply = await alice.iq(`<iq type='get' id='i6' to='${host}'><query xmlns='${ITEMS}' node='x'/></iq>`);
      assertExact(reply, iqError({ id: 'i6', from: host, to: alice.jid, type: 'cancel', condition: 'item-not-found' }));
    });

    it('answers an IQ set with <service-unavailable/>', async () => {
      for (const ns of [INFO, ITEMS]) {
        const reply = await alice.iq(`<iq type='set' id='i7' to='${host}'><query xmlns='${ns}'/></iq>`);
        assertExact(reply, iqError({ id: 'i7', from: host, to: alice.jid, type: 'cancel', condition: 'service-unavailable' }));
      }
    });
  });

  describe('an account (§3.1, §4.1, §8)', () => {
    const accountInfo = () => server.server.router.hosts.get(host)!.discoInfo('account');
    const unavailable = (id: string, from: string, to: string) => iqError({ id, from, to, type: 'cancel', condition: 'service-unavailable' });

    it('answers disco#info to the user and to those who receive its presence', async () => {
      const info = accountInfo();
      assert.deepEqual(info.identities, [{ category: 'account', type: 'registered' }]);
      assert.ok(info.features.includes(INFO) && info.features.includes(ITEMS));
      const pattern = (id: string, to: string) => `<iq type='result' id='${id}' from='bob@${host}' to='${to}'>${infoPattern(info)}</iq>`;
      assertExact(await alice.iq(`<iq type='get' id='a1' to='bob@${host}'><query xmlns='${INFO}'/></iq>`), pattern('a1', alice.jid!));
      assertExact(await bob.iq(`<iq type='get' id='a2' to='bob@${host}'><query xmlns='${INFO}'/></iq>`), pattern('a2', bob.jid!));
    });

    it('answers an IQ with no `to` on behalf of the sender\'s account', async () => {
      const reply = await bob.iq(`<iq type='get' id='a3'><query xmlns='${INFO}'/></iq>`);
      assertExact(reply, `<iq type='result' id='a3' to='${bob.jid}'>${infoPattern(accountInfo())}</iq>`);
    });

    it('gives the same <service-unavailable/> to strangers, to contacts without presence access and about unknown accounts', async () => {
      assertExact(await carol.iq(`<iq type='get' id='a4' to='bob@${host}'><query xmlns='${INFO}'/></iq>`), unavailable('a4', `bob@${host}`, carol.jid!));
      assertExact(await dave.iq(`<iq type='get' id='a5' to='bob@${host}'><query xmlns='${INFO}'/></iq>`), unavailable('a5', `bob@${host}`, dave.jid!));
      assertExact(await alice.iq(`<iq type='get' id='a6' to='nobody@${host}'><query xmlns='${INFO}'/></iq>`), unavailable('a6', `nobody@${host}`, alice.jid!));
      assertExact(await alice.iq(`<iq type='get' id='a7' to='nobody@${host}'><query xmlns='${INFO}' node='n'/></iq>`), unavailable('a7', `nobody@${host}`, alice.jid!));
      assertExact(await carol.iq(`<iq type='get' id='a8' to='bob@${host}'><query xmlns='${INFO}' node='n'/></iq>`), unavailable('a8', `bob@${host}`, carol.jid!));
    });

    it('answers unknown account info nodes with <item-not-found/> for those allowed', async () => {
      const reply = await alice.iq(`<iq type='get' id='a9' to='bob@${host}'><query xmlns='${INFO}' node='urn:xmpp:avatar:data'/></iq>`);
      assertExact(reply, iqError({ id: 'a9', from: `bob@${host}`, to: alice.jid, type: 'cancel', condition: 'item-not-found' }));
    });

    it('lists available resources as items, only to those allowed', async () => {
      const empty = (id: string, to: string, node?: string) => `<iq type='result' id='${id}' from='bob@${host}' to='${to}'><query xmlns='${ITEMS}'${node ? ` node='${node}'` : ''}/></iq>`;
      // Bound but not available yet.
      assertExact(await alice.iq(`<iq type='get' id='b1' to='bob@${host}'><query xmlns='${ITEMS}'/></iq>`), empty('b1', alice.jid!));
      bob.send('<presence/>');
      await bob.expect(`<presence from='${bob.jid}'/>`, { skip: true });
      const listed = `<iq type='result' id='b2' from='bob@${host}' to='${alice.jid}'><query xmlns='${ITEMS}'><item jid='${bob.jid}'/></query></iq>`;
      assertExact(await alice.iq(`<iq type='get' id='b2' to='bob@${host}'><query xmlns='${ITEMS}'/></iq>`, { skip: true }), listed);
      assertExact(await carol.iq(`<iq type='get' id='b3' to='bob@${host}'><query xmlns='${ITEMS}'/></iq>`, { skip: true }), empty('b3', carol.jid!));
      assertExact(await dave.iq(`<iq type='get' id='b4' to='bob@${host}'><query xmlns='${ITEMS}'/></iq>`, { skip: true }), empty('b4', dave.jid!));
      assertExact(await alice.iq(`<iq type='get' id='b5' to='nobody@${host}'><query xmlns='${ITEMS}'/></iq>`, { skip: true }), `<iq type='result' id='b5' from='nobody@${host}' to='${alice.jid}'><query xmlns='${ITEMS}'/></iq>`);
      assertExact(await carol.iq(`<iq type='get' id='b6' to='bob@${host}'><query xmlns='${ITEMS}' node='n'/></iq>`, { skip: true }), empty('b6', carol.jid!, 'n'));
      const reply = await alice.iq(`<iq type='get' id='b7' to='bob@${host}'><query xmlns='${ITEMS}' node='n'/></iq>`, { skip: true });
      assertExact(reply, iqError({ id: 'b7', from: `bob@${host}`, to: alice.jid, type: 'cancel', condition: 'item-not-found' }));
    });

    it('answers an IQ set to an account with <service-unavailable/>', async () => {
      assertExact(await alice.iq(`<iq type='set' id='b8' to='bob@${host}'><query xmlns='${INFO}'/></iq>`, { skip: true }), unavailable('b8', `bob@${host}`, alice.jid!));
    });
  });
});
