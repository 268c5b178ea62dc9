/**
 * The server as an operator runs it: `meerkat start` with no config at all (the README's
 * `npm start`), and graceful shutdown on SIGTERM.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { openStorage } from '../src/storage/index.ts';
import { trustCertificate } from './support/tls-trust.ts';
import { ScriptedClient, connectXmppJs, startServerProcess, xml } from './support/index.ts';

const CLI = fileURLToPath(new URL('../bin/meerkat.js', import.meta.url));

describe('meerkat start with the built-in defaults', () => {
  it('serves localhost on 5222 (STARTTLS) and 5223 (direct TLS) with a generated certificate and SQLite', async () => {
    for (const port of [5222, 5223]) assert.equal(await accepts(port), false, `port ${port} is already in use on this machine`);
    const cwd = await mkdtemp(path.join(os.tmpdir(), 'meerkat-defaults-'));
    const child = spawn(process.execPath, [CLI, 'start'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let untrust = () => undefined as void;
    try {
      const deadline = Date.now() + 30_000;
      while (!((await accepts(5222)) && (await accepts(5223)))) {
        assert.ok(Date.now() < deadline && child.exitCode === null, `server did not start:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(existsSync(path.join(cwd, 'data', 'meerkat.sqlite')), 'SQLite database in ./data');
      const certificate = await readFile(path.join(cwd, 'data', 'self-signed.crt'), 'utf8');
      untrust = trustCertificate(certificate, ['localhost']);

      // An operator adds an account while the server runs.
      const added = spawnSync(process.execPath, [CLI, 'user', 'add', 'nurse@localhost', '--password-stdin'], { cwd, input: 'night-shift-2026\n', encoding: 'utf8' });
      assert.equal(added.status, 0, added.stderr);

      const scripted = await ScriptedClient.connect({ port: 5222, domain: 'localhost', tls: 'starttls', ca: certificate, name: 'nurse/scripted' });
      assert.ok(scripted.mechanisms().includes('SCRAM-SHA-256-PLUS'));
      await scripted.login('nurse', 'night-shift-2026', { mechanism: 'SCRAM-SHA-512-PLUS', channelBinding: 'tls-exporter' });
      const scriptedJid = await scripted.bind('desk');

      const phone = await connectXmppJs({ port: 5223, tls: 'direct', domain: 'localhost', username: 'nurse', password: 'night-shift-2026', resource: 'phone' });
      await phone.send(xml('message', { to: scriptedJid, type: 'chat', id: 'd1' }, xml('body', {}, 'bed 4 needs you')));
      const delivered = await scripted.expect(`<message from='nurse@localhost/phone' type='chat' id='d1'><body>bed 4 needs you</body></message>`);
      await phone.stop();

      // The message archive is on by default: the message is in it, under the id it arrived with.
      const stanzaId = delivered.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id;
      assert.ok(stanzaId, delivered.toString());
      scripted.send(`<iq type='set' id='mam'><query xmlns='urn:xmpp:mam:2' queryid='all'/></iq>`);
      const archived = await scripted.expect(`<message><result xmlns='urn:xmpp:mam:2' queryid='all' id='${stanzaId}'/></message>`);
      assert.match(archived.toString(), /bed 4 needs you/);
      await scripted.expect(`<iq type='result' id='mam'><fin xmlns='urn:xmpp:mam:2' complete='true'/></iq>`);

      child.kill('SIGTERM');
      await scripted.expectStreamError('system-shutdown', { skip: true });
      assert.equal(await exited, 0, output);
    } finally {
      untrust();
      child.kill('SIGKILL');
      await exited;
      await rm(cwd, { recursive: true, force: true });
    }
  });
});

describe('graceful shutdown', () => {
  it('sends <system-shutdown/> to every stream, flushes storage and exits 0 on SIGTERM', async () => {
    const proc = await startServerProcess({ users: { alice: 'alice-secret', bob: 'bob-secret' } });
    try {
      const alice = await proc.login('alice', 'alice-secret', { resource: 'a' });
      const bob = await proc.login('bob', 'bob-secret', { resource: 'b' });
      const unauthenticated = await proc.connect();
      alice.send("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'/></query></iq>");
      await alice.expect("<iq type='result' id='r1'/>", { skip: true });

      proc.kill('SIGTERM');
      for (const client of [alice, bob, unauthenticated]) await client.expectStreamError('system-shutdown', { skip: true });
      const { code, signal } = await proc.exited;
      assert.equal(signal, null, proc.stderr);
      assert.equal(code, 0, proc.stderr);

      // What was acknowledged before the signal is on disk.
      const storage = await openStorage({ backend: 'sqlite', path: path.resolve(proc.config.general.data_dir, proc.config.storage.sqlite.path) }, pino({ level: 'silent' }));
      try {
        const item = await storage.roster.getItem({ username: 'alice', domain: 'localhost' }, 'bob@localhost');
        assert.equal(item?.name, 'Bob');
      } finally {
        await storage.close();
      }
    } finally {
      await proc.stop();
    }
  });
});

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
