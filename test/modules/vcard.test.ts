/**
 * XEP-0054 vcard-temp: own vCard get and set (empty when none), anyone reads anyone's,
 * nobody sets someone else's, the size limit, and the same error for "no vCard" and "no such
 * account".
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { type ScriptedClient, type TestServer, startTestServer } from '../support/index.ts';
import { assertExact, iqError } from './exact.ts';

const NS = 'vcard-temp';
const PW = 'a-long-password';
const host = 'localhost';
const CARD = `<vCard xmlns='${NS}'><FN>Alice Liddell</FN><N><FAMILY>Liddell</FAMILY><GIVEN>Alice</GIVEN></N><ORG><ORGNAME>St Mary &amp; St John</ORGNAME><ORGUNIT>Cardiology</ORGUNIT></ORG><TEL><WORK/><VOICE/><NUMBER>+44 20 7946 0000</NUMBER></TEL><DESC>On call &lt;Mondays&gt;</DESC></vCard>`;

describe('XEP-0054 vcard-temp', () => {
  let server: TestServer;
  let alice: ScriptedClient;
  let bob: ScriptedClient;

  before(async () => {
    server = await startTestServer({ toml: '[modules.vcard]\nmax_size = 2048\n' });
    for (const name of ['alice', 'bob', 'carol']) await server.addUser(name, PW);
    alice = await server.login('alice', PW, { resource: 'desk' });
    bob = await server.login('bob', PW, { resource: 'phone' });
  });
  after(() => server.stop());

  it('is advertised for the server and for accounts', () => {
    const h = server.server.router.hosts.get(host)!;
    assert.ok(h.discoInfo('host').features.includes(NS));
    assert.ok(h.discoInfo('account').features.includes(NS));
  });

  it('gives an empty vCard when the user has none', async () => {
    assertExact(await alice.iq(`<iq type='get' id='v1'><vCard xmlns='${NS}'/></iq>`), `<iq type='result' id='v1' to='${alice.jid}'><vCard xmlns='${NS}'/></iq>`);
    assertExact(await alice.iq(`<iq type='get' id='v2' to='alice@${host}'><vCard xmlns='${NS}'/></iq>`), `<iq type='result' id='v2' from='alice@${host}' to='${alice.jid}'><vCard xmlns='${NS}'/></iq>`);
  });

  it('stores the vCard set by its owner and gives it back whole', async () => {
    assertExact(await alice.iq(`<iq type='set' id='v3'>${CARD}</iq>`), `<iq type='result' id='v3' to='${alice.jid}'/>`);
    assertExact(await alice.iq(`<iq type='get' id='v4'><vCard xmlns='${NS}'/></iq>`), `<iq type='result' id='v4' to='${alice.jid}'>${CARD}</iq>`);
  });

  it('lets anyone read another account\'s vCard at its bare JID', async () => {
    assertExact(await bob.iq(`<iq type='get' id='v5' to='alice@${host}'><vCard xmlns='${NS}'/></iq>`), `<iq type='result' id='v5' from='alice@${host}' to='${bob.jid}'>${CARD}</iq>`);
  });

  it('answers <service-unavailable/> alike for an account without a vCard and an unknown account', async () => {
    for (const [id, to] of [['v6', `carol@${host}`], ['v7', `nobody@${host}`]]) {
      const reply = await bob.iq(`<iq type='get' id='${id}' to='${to}'><vCard xmlns='${NS}'/></iq>`);
      assertExact(reply, iqError({ id, from: to, to: bob.jid, type: 'cancel', condition: 'service-unavailable' }));
    }
  });

  it('refuses to set another account\'s vCard with <forbidden/>, whether it exists or not', async () => {
    for (const [id, to] of [['v8', `alice@${host}`], ['v9', `nobody@${host}`]]) {
      const reply = await bob.iq(`<iq type='set' id='${id}' to='${to}'><vCard xmlns='${NS}'><FN>Mallory</FN></vCard></iq>`);
      assertExact(reply, iqError({ id, from: to, to: bob.jid, type: 'auth', condition: 'forbidden', text: "only the account's owner may change its vCard" }));
    }
    assertExact(await bob.iq(`<iq type='get' id='v10' to='alice@${host}'><vCard xmlns='${NS}'/></iq>`), `<iq type='result' id='v10' from='alice@${host}' to='${bob.jid}'>${CARD}</iq>`);
  });

  it('refuses a vCard larger than max_size with <not-acceptable/>, keeping the old one', async () => {
    const big = `<vCard xmlns='${NS}'><DESC>${'x'.repeat(2048)}</DESC></vCard>`;
    const reply = await alice.iq(`<iq type='set' id='v11'>${big}</iq>`);
    assertExact(reply, iqError({ id: 'v11', to: alice.jid, type: 'modify', condition: 'not-acceptable', text: 'a vCard may be at most 2048 bytes' }));
    assertExact(await alice.iq(`<iq type='get' id='v12'><vCard xmlns='${NS}'/></iq>`), `<iq type='result' id='v12' to='${alice.jid}'>${CARD}</iq>`);
  });

  it('keeps prefixed content whose namespace the IQ declared', async () => {
    assertExact(
      await bob.iq(`<iq type='set' id='v13' to='bob@${host}' xmlns:x='urn:example:x'><vCard xmlns='${NS}'><FN>Bob</FN><x:badge x:level='2'>Porter</x:badge></vCard></iq>`),
      `<iq type='result' id='v13' from='bob@${host}' to='${bob.jid}'/>`,
    );
    const reply = await alice.iq(`<iq type='get' id='v14' to='bob@${host}'><vCard xmlns='${NS}'/></iq>`);
    assertExact(reply, `<iq type='result' id='v14' from='bob@${host}' to='${alice.jid}'><vCard xmlns='${NS}'><FN>Bob</FN><x:badge xmlns:x='urn:example:x' x:level='2'>Porter</x:badge></vCard></iq>`);
  });

  it('removes the vCard when an empty one is set', async () => {
    assertExact(await bob.iq(`<iq type='set' id='v15'><vCard xmlns='${NS}'/></iq>`), `<iq type='result' id='v15' to='${bob.jid}'/>`);
    assert.equal(await server.server.storage.vcards.get({ username: 'bob', domain: host }), undefined);
    assertExact(await bob.iq(`<iq type='get' id='v16'><vCard xmlns='${NS}'/></iq>`), `<iq type='result' id='v16' to='${bob.jid}'><vCard xmlns='${NS}'/></iq>`);
  });

  it('is not answered for the server itself: <service-unavailable/>', async () => {
    const reply = await alice.iq(`<iq type='get' id='v17' to='${host}'><vCard xmlns='${NS}'/></iq>`);
    assertExact(reply, iqError({ id: 'v17', from: host, to: alice.jid, type: 'cancel', condition: 'service-unavailable' }));
  });

  it('refuses a max_size out of bounds at start-up', async () => {
    await assert.rejects(startTestServer({ toml: '[modules.vcard]\nmax_size = 10\n' }), /max_size/);
  });
});
