/**
 * Secrets and message bodies stay out of the logs: a whole session (login with every kind of
 * mechanism, chat, a failed login, a vCard) at `info` level, and the captured log is searched
 * for what must never be in it.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { startTestServer } from '../support/index.ts';

const PASSWORD = 'correct-horse-battery-staple';
const BODY = 'patient in bed 12 has a penicillin allergy';

describe('logs at info level', () => {
  it('contain no passwords and no message bodies', async () => {
    const server = await startTestServer({ toml: '[general]\nloglevel = "info"' });
    try {
      await server.addUser('alice', PASSWORD);
      await server.addUser('bob', PASSWORD);
      const alice = await server.login('alice', PASSWORD, { mechanism: 'PLAIN', resource: 'a' });
      const bob = await server.login('bob', PASSWORD, { mechanism: 'SCRAM-SHA-1', resource: 'b' });
      const failed = await server.connect();
      assert.equal((await failed.authenticate('alice', `${PASSWORD}-wrong`)).ok, false);
      alice.send(`<message to='bob@localhost/b' type='chat' id='m1'><body>${BODY}</body></message>`);
      await bob.expect(`<message id='m1'><body>${BODY}</body></message>`);
      bob.send(`<message to='nobody@localhost' type='chat' id='m2'><body>${BODY}</body></message>`);
      await bob.expect("<message type='error' id='m2'/>");

      assert.ok(server.logs.length > 0, 'something was logged at info level');
      const text = server.logs.join('\n');
      for (const secret of [PASSWORD, BODY, Buffer.from(`\0alice\0${PASSWORD}`).toString('base64')]) {
        assert.ok(!text.includes(secret), `the log contains ${JSON.stringify(secret)}`);
      }
    } finally {
      await server.stop();
    }
  });
});
