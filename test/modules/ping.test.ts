/**
 * XEP-0199 ping: the server answers for itself, for IQs with no `to`, and for an account's
 * bare JID (to the user and to those who receive its presence: anyone else gets the answer
 * an unknown account gets); full JIDs reach the client.
 */
import { after, before, describe, it } from 'node:test';
import { type ScriptedClient, type TestServer, startTestServer } from '../support/index.ts';
import { assertExact, iqError } from './exact.ts';

const NS = 'urn:xmpp:ping';
const PW = 'a-long-password';

describe('XEP-0199 ping', () => {
  let server: TestServer;
  let alice: ScriptedClient;
  let bob: ScriptedClient;
  let carol: ScriptedClient;
  const host = 'localhost';
  const ping = (id: string, to?: string, type = 'get') => `<iq type='${type}' id='${id}'${to === undefined ? '' : ` to='${to}'`}><ping xmlns='${NS}'/></iq>`;

  before(async () => {
    server = await startTestServer({
      toml: '[[listen.c2s]]\nport = 0\naddress = "127.0.0.1"\nmax_connections_per_address = 1000\n',
      listeners: ['starttls'],
    });
    for (const name of ['alice', 'bob', 'carol']) await server.addUser(name, PW);
    // Alice receives Bob's presence; Carol does not.
    await server.server.storage.roster.put({ username: 'bob', domain: host }, { jid: `alice@${host}`, subscription: 'both', askOut: false, askIn: false, groups: [] });
    alice = await server.login('alice', PW, { resource: 'desk' });
    bob = await server.login('bob', PW, { resource: 'phone' });
    carol = await server.login('carol', PW, { resource: 'home' });
  });
  after(() => server.stop());

  it('the server answers a ping to its domain', async () => {
    assertExact(await alice.iq(ping('p1', host)), `<iq type='result' id='p1' from='${host}' to='${alice.jid}'/>`);
  });

  it('the server answers a ping with no `to` and one to the user\'s own bare JID (§4.2)', async () => {
    assertExact(await alice.iq(ping('p2')), `<iq type='result' id='p2' to='${alice.jid}'/>`);
    assertExact(await alice.iq(ping('p3', `alice@${host}`)), `<iq type='result' id='p3' from='alice@${host}' to='${alice.jid}'/>`);
  });

  it('the server answers for a bare JID whose presence the requester receives', async () => {
    assertExact(await alice.iq(ping('p4', `bob@${host}`)), `<iq type='result' id='p4' from='bob@${host}' to='${alice.jid}'/>`);
    await bob.expectNothing(100);
  });

  it('others, and pings to unknown accounts, get the same <service-unavailable/>', async () => {
    assertExact(await carol.iq(ping('p5', `bob@${host}`)), iqError({ id: 'p5', from: `bob@${host}`, to: carol.jid, type: 'cancel', condition: 'service-unavailable' }));
    assertExact(await alice.iq(ping('p6', `nobody@${host}`)), iqError({ id: 'p6', from: `nobody@${host}`, to: alice.jid, type: 'cancel', condition: 'service-unavailable' }));
  });

  it('a ping to a full JID reaches the client, and its pong comes back', async () => {
    carol.send(ping('p7', bob.jid));
    await bob.expect(`<iq type='get' id='p7' from='${carol.jid}' to='${bob.jid}'><ping xmlns='${NS}'/></iq>`);
    bob.send(`<iq type='result' id='p7' to='${carol.jid}'/>`);
    assertExact(await carol.expect(`<iq id='p7'/>`), `<iq type='result' id='p7' from='${bob.jid}' to='${carol.jid}'/>`);
  });

  it('a ping to a resource that is not connected gets <service-unavailable/>', async () => {
    assertExact(await alice.iq(ping('p8', `bob@${host}/gone`)), iqError({ id: 'p8', from: `bob@${host}/gone`, to: alice.jid, type: 'cancel', condition: 'service-unavailable' }));
  });

  it('a ping of type set is not a ping: <service-unavailable/>', async () => {
    assertExact(await alice.iq(ping('p9', host, 'set')), iqError({ id: 'p9', from: host, to: alice.jid, type: 'cancel', condition: 'service-unavailable' }));
    assertExact(await alice.iq(ping('p10', `bob@${host}`, 'set')), iqError({ id: 'p10', from: `bob@${host}`, to: alice.jid, type: 'cancel', condition: 'service-unavailable' }));
  });

  it('an IQ of an unknown type is a <bad-request/>', async () => {
    const reply = await alice.iq(ping('p11', host, 'ping'));
    assertExact(reply, iqError({ id: 'p11', from: host, to: alice.jid, type: 'modify', condition: 'bad-request', text: 'IQ type must be get, set, result or error' }));
  });
});
