/**
 * A Python client nobody here wrote: slixmpp (Debian's python3-slixmpp, which .ci/run
 * installs) logs in over STARTTLS with SCRAM on a two-domain server, uses the basic services
 * and chats with a scripted client on the other domain.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestServer } from '../support/index.ts';

const SCRIPT = fileURLToPath(new URL('./slixmpp_client.py', import.meta.url));
// Debian's interpreter, where python3-slixmpp lives (not a pyenv one earlier on the PATH).
const PYTHON = '/usr/bin/python3';

// .ci/run installs it; on a developer machine without it this one test says so and is skipped.
const missing = spawnSync(PYTHON, ['-c', 'import slixmpp']).status !== 0
  ? 'needs python3-slixmpp (apt-get install python3-slixmpp)'
  : false;

describe('slixmpp', { skip: missing }, () => {
  it('logs in with STARTTLS and SCRAM, uses roster, disco, ping, version, vCard, blocking and chats across domains', async () => {
    const server = await startTestServer({ hosts: ['localhost', 'clinic.test'] });
    try {
      await server.addUser('alice', 'alice-secret');
      await server.addUser('bob@clinic.test', 'bob-secret');
      const cafile = path.join(server.dataDir, 'ca.pem');
      await writeFile(cafile, server.certificate);
      const bob = await server.login('bob@clinic.test', 'bob-secret', { resource: 'pager' });

      const child = spawn(PYTHON, [SCRIPT, 'alice@localhost/slix', 'alice-secret', 'bob@clinic.test/pager', String(server.port('starttls')), cafile]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

      const message = await bob.expect("<message from='alice@localhost/slix' type='chat'><body>hello from slixmpp</body></message>", { timeout: 30_000 });
      bob.send(`<message to='${message.attrs.from}' type='chat'><body>hello from bob</body></message>`);
      assert.equal(await exited, 0, stderr);
      const seen = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
      assert.equal(seen.error, undefined, stderr);
      assert.equal(seen.jid, 'alice@localhost/slix');
      assert.equal(seen.ping, true);
      assert.equal(seen.version, 'Meerkat');
      assert.equal(seen.vcard, 'Alice Liddell');
      assert.deepEqual(seen.blocked, ['spam@example.com']);
      assert.equal(seen.reply, 'hello from bob');
      for (const feature of ['http://jabber.org/protocol/disco#info', 'urn:xmpp:ping', 'jabber:iq:version', 'urn:xmpp:blocking', 'vcard-temp']) {
        assert.ok((seen.features as string[]).includes(feature), `${feature} in ${JSON.stringify(seen.features)}`);
      }
    } finally {
      await server.stop();
    }
  });
});
