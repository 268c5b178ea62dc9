/** XEP-0202 entity time of the server, in XEP-0082 formats. */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { type ScriptedClient, type TestServer, startTestServer } from '../support/index.ts';
import { tzo } from '../../src/modules/time/index.ts';
import { assertExact, iqError } from './exact.ts';

const NS = 'urn:xmpp:time';
const PW = 'a-long-password';
const host = 'localhost';

describe('XEP-0082 time zone definition', () => {
  const at = (offset: number) => ({ getTimezoneOffset: () => offset }) as Date;
  it('formats the offset from UTC as ±hh:mm', () => {
    assert.equal(tzo(at(360)), '-06:00');
    assert.equal(tzo(at(-330)), '+05:30');
    assert.equal(tzo(at(-345)), '+05:45');
    assert.equal(tzo(at(0)), '+00:00');
    assert.equal(tzo(at(-840)), '+14:00');
    assert.equal(tzo(at(570)), '-09:30');
  });
});

describe('XEP-0202 entity time', () => {
  let server: TestServer;
  let alice: ScriptedClient;

  before(async () => {
    server = await startTestServer();
    await server.addUser('alice', PW);
    await server.addUser('bob', PW);
    alice = await server.login('alice', PW, { resource: 'desk' });
  });
  after(() => server.stop());

  it('gives the server\'s UTC offset and UTC time', async () => {
    const before = Date.now();
    const reply = await alice.iq(`<iq type='get' id='t1' to='${host}'><time xmlns='${NS}'/></iq>`);
    const after = Date.now();
    assertExact(reply, `<iq type='result' id='t1' from='${host}' to='${alice.jid}'><time xmlns='${NS}'><tzo>{{any}}</tzo><utc>{{any}}</utc></time></iq>`);
    const time = reply.getChild('time', NS)!;
    const utc = time.getChildText('utc')!;
    assert.match(utc, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const t = Date.parse(utc);
    assert.ok(t >= before - 1 && t <= after + 1, `${utc} is now`);
    assert.equal(time.getChildText('tzo'), tzo(new Date(t)));
  });

  it('answers with no `to` too', async () => {
    assertExact(await alice.iq(`<iq type='get' id='t2'><time xmlns='${NS}'/></iq>`), `<iq type='result' id='t2' to='${alice.jid}'><time xmlns='${NS}'><tzo>{{any}}</tzo><utc>{{any}}</utc></time></iq>`);
  });

  it('is not answered for accounts, nor for IQ sets: <service-unavailable/>', async () => {
    for (const [id, to, type] of [['t3', `bob@${host}`, 'get'], ['t4', host, 'set'], ['t5', `nobody@${host}`, 'get']]) {
      const reply = await alice.iq(`<iq type='${type}' id='${id}' to='${to}'><time xmlns='${NS}'/></iq>`);
      assertExact(reply, iqError({ id, from: to, to: alice.jid, type: 'cancel', condition: 'service-unavailable' }));
    }
  });
});
