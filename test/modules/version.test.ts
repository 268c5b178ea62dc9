/** XEP-0092 software version of the server; the OS only when configured. */
import { strict as assert } from 'node:assert';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import { type ScriptedClient, type TestServer, startTestServer } from '../support/index.ts';
import { SERVER_NAME, SERVER_VERSION } from '../../src/server.ts';
import { assertExact, iqError } from './exact.ts';

const NS = 'jabber:iq:version';
const PW = 'a-long-password';
const host = 'localhost';

describe('XEP-0092 software version', () => {
  let server: TestServer;
  let alice: ScriptedClient;

  before(async () => {
    server = await startTestServer();
    await server.addUser('alice', PW);
    await server.addUser('bob', PW);
    alice = await server.login('alice', PW, { resource: 'desk' });
  });
  after(() => server.stop());

  it('gives the server name and version, without the OS by default', async () => {
    const reply = await alice.iq(`<iq type='get' id='v1' to='${host}'><query xmlns='${NS}'/></iq>`);
    assertExact(reply, `<iq type='result' id='v1' from='${host}' to='${alice.jid}'><query xmlns='${NS}'><name>${SERVER_NAME}</name><version>${SERVER_VERSION}</version></query></iq>`);
  });

  it('is advertised in disco#info', async () => {
    const reply = await alice.iq(`<iq type='get' id='v2' to='${host}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    assert.ok(reply.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === NS));
  });

  it('is not answered for accounts, nor for IQ sets: <service-unavailable/>', async () => {
    for (const [id, to, type] of [['v3', `bob@${host}`, 'get'], ['v4', host, 'set'], ['v5', `nobody@${host}`, 'get']]) {
      const reply = await alice.iq(`<iq type='${type}' id='${id}' to='${to}'><query xmlns='${NS}'/></iq>`);
      assertExact(reply, iqError({ id, from: to, to: alice.jid, type: 'cancel', condition: 'service-unavailable' }));
    }
  });
});

describe('XEP-0092 with show_os = true', () => {
  it('adds the operating system', async () => {
    const server = await startTestServer({ toml: '[modules.version]\nshow_os = true\n' });
    try {
      await server.addUser('alice', PW);
      const alice = await server.login('alice', PW);
      const reply = await alice.iq(`<iq type='get' id='v6' to='${host}'><query xmlns='${NS}'/></iq>`);
      assertExact(reply, `<iq type='result' id='v6' from='${host}' to='${alice.jid}'><query xmlns='${NS}'><name>${SERVER_NAME}</name><version>${SERVER_VERSION}</version><os>${os.type()} ${os.release()}</os></query></iq>`);
    } finally {
      await server.stop();
    }
  });

  it('refuses a bad value or an unknown key at start-up', async () => {
    await assert.rejects(startTestServer({ toml: '[modules.version]\nshow_os = "yes"\n' }), /show_os/);
    await assert.rejects(startTestServer({ toml: '[modules.version]\nshow_kernel = true\n' }), /show_kernel/);
  });
});
