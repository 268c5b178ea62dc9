/**
 * The `meerkat` command as an operator runs it: a child process (`node bin/meerkat.js`)
 * with a temporary config and data folder. Exit status 0 success, 1 failure, 2 misuse.
 * (`meerkat start` is exercised by test/server.test.ts.)
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { verifyPassword } from '../../src/auth/scram.ts';
import { parseConfig, storageOptions } from '../../src/config/load.ts';
import { openStorage } from '../../src/storage/index.ts';
import type { ArchivedMessage, UserRef } from '../../src/storage/types.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = path.join(ROOT, 'bin/meerkat.js');

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function meerkat(args: string[], options: { cwd?: string; input?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8'); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** A misuse: exit 2, one line on stderr with the hint. */
function assertMisuse(result: Result, message: RegExp): void {
  assert.equal(result.status, 2, result.stderr);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line: ${result.stderr}`);
  assert.match(lines[0], message);
  assert.match(lines[0], /run 'meerkat (--help|help \w+)' for usage/);
  assert.equal(result.stdout, '');
}

/** An operational failure: exit 1, one line on stderr. */
function assertFailure(result: Result, message: RegExp): void {
  assert.equal(result.status, 1, result.stderr);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line: ${result.stderr}`);
  assert.match(lines[0], /^meerkat: /);
  assert.match(lines[0], message);
}

describe('meerkat help and version', () => {
  it('--help lists the commands on stdout', async () => {
    const result = await meerkat(['--help']);
    assert.equal(result.status, 0, result.stderr);
    for (const command of ['start', 'user add', 'user passwd', 'user remove', 'user list', 'archive purge', '--config', '--version']) {
      assert.ok(result.stdout.includes(command), `mentions ${command}`);
    }
  });

  it('help <command> and <command> --help', async () => {
    const user = await meerkat(['help', 'user']);
    assert.equal(user.status, 0);
    assert.match(user.stdout, /--password-stdin/);
    const start = await meerkat(['start', '--help']);
    assert.equal(start.status, 0);
    assert.match(start.stdout, /Usage: meerkat start/);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await meerkat(['--version']);
    assert.equal(result.status, 0);
    assert.equal(result.stdout.trim(), `meerkat ${pkg.version}`);
  });

  it('misuse exits 2 with a one-line error and a hint', async () => {
    const cases: [string[], RegExp][] = [
      [[], /no command given/],
      [['launch'], /unknown command: launch/],
      [['--frobnicate'], /unknown option --frobnicate/],
      [['user'], /missing user command/],
      [['user', 'rename', 'a@localhost'], /unknown user command: rename/],
      [['user', 'add'], /missing <jid>/],
      [['user', 'add', 'a@localhost', 'hunter2'], /unexpected argument "hunter2"/],
      [['user', 'remove', 'a@localhost', '--password-stdin'], /unknown option --password-stdin/],
      [['user', 'list', '--config'], /option --config needs a value/],
      [['help', 'nothing'], /no such command: nothing/],
      [['archive'], /missing archive command \(purge\)/],
      [['archive', 'purge'], /missing --before DATE/],
      [['archive', 'purge', '--before', 'yesterday'], /invalid date "yesterday"/],
      [['archive', 'purge', '--before', '2025-02-30'], /invalid date "2025-02-30"/],
      [['archive', 'purge', '--before', '2025-01-01T10:00:00'], /invalid date/],
    ];
    const results = await Promise.all(cases.map(([args]) => meerkat(args)));
    results.forEach((result, i) => assertMisuse(result, cases[i][1]));
  });
});

describe('meerkat user', () => {
  let dir: string;
  let configPath: string;
  const cli = (...args: string[]) => meerkat([...args, '--config', configPath], { cwd: dir });
  const withPassword = (password: string, ...args: string[]) => meerkat([...args, '--password-stdin', '--config', configPath], { cwd: dir, input: `${password}\n` });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'meerkat-cli-'));
    configPath = path.join(dir, 'meerkat.toml');
    await writeFile(configPath, `
      [general]
      hosts = ["hospital.test", "partners.test"]
      data_dir = "data"
      loglevel = "warn"
      [auth]
      scram_iterations = 4096
    `);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function passwordWorks(jid: string, password: string): Promise<boolean> {
    const config = parseConfig(await readFile(configPath, 'utf8'), configPath);
    const storage = await openStorage(storageOptions(config), pino({ level: 'silent' }));
    try {
      const [username, domain] = jid.split('@');
      const credentials = await storage.users.getCredentials({ username, domain });
      assert.ok(credentials, `${jid} exists`);
      return verifyPassword('SHA-256', credentials['SHA-256'], password);
    } finally {
      await storage.close();
    }
  }

  it('add, list, passwd and remove round trip', async () => {
    const added = await withPassword('night-shift-2026', 'user', 'add', 'Nurse@Hospital.test');
    assert.equal(added.status, 0, added.stderr);
    assert.match(added.stdout, /created nurse@hospital\.test/);
    assert.equal((await withPassword('partner-pass-1', 'user', 'add', 'lab@partners.test')).status, 0);
    assert.equal((await withPassword('second-nurse-pw', 'user', 'add', 'aide@hospital.test')).status, 0);

    const all = await cli('user', 'list');
    assert.equal(all.status, 0, all.stderr);
    assert.deepEqual(all.stdout.trim().split('\n'), ['aide@hospital.test', 'lab@partners.test', 'nurse@hospital.test']);
    const one = await cli('user', 'list', 'partners.test');
    assert.deepEqual(one.stdout.trim().split('\n'), ['lab@partners.test']);
    assert.ok(await passwordWorks('nurse@hospital.test', 'night-shift-2026'));

    const changed = await withPassword('day-shift-2026', 'user', 'passwd', 'nurse@hospital.test');
    assert.equal(changed.status, 0, changed.stderr);
    assert.ok(await passwordWorks('nurse@hospital.test', 'day-shift-2026'));
    assert.equal(await passwordWorks('nurse@hospital.test', 'night-shift-2026'), false);

    const removed = await cli('user', 'remove', 'nurse@hospital.test');
    assert.equal(removed.status, 0, removed.stderr);
    assert.deepEqual((await cli('user', 'list', 'hospital.test')).stdout.trim().split('\n'), ['aide@hospital.test']);
  });

  it('reads only the first line of stdin as the password', async () => {
    assert.equal((await withPassword('first-line\r\nsecond-line', 'user', 'add', 'crlf@hospital.test')).status, 0);
    assert.ok(await passwordWorks('crlf@hospital.test', 'first-line'));
  });

  it('an existing user, a missing user and a domain not served fail with exit 1', async () => {
    assert.equal((await withPassword('some-password', 'user', 'add', 'dup@hospital.test')).status, 0);
    assertFailure(await withPassword('other-password', 'user', 'add', 'DUP@hospital.test'), /dup@hospital\.test already exists/);
    assertFailure(await withPassword('other-password', 'user', 'passwd', 'ghost@hospital.test'), /no such user: ghost@hospital\.test/);
    assertFailure(await cli('user', 'remove', 'ghost@hospital.test'), /no such user: ghost@hospital\.test/);
    assertFailure(await withPassword('some-password', 'user', 'add', 'x@elsewhere.test'), /elsewhere\.test is not served by this server/);
    assertFailure(await cli('user', 'list', 'elsewhere.test'), /elsewhere\.test is not served/);
  });

  it('invalid JIDs and passwords become one-line errors', async () => {
    const [noDomain, space, resource, empty, control] = await Promise.all([
      withPassword('some-password', 'user', 'add', 'no-domain'),
      withPassword('some-password', 'user', 'add', 'a b@hospital.test'),
      withPassword('some-password', 'user', 'add', 'a@hospital.test/phone'),
      meerkat(['user', 'add', 'empty@hospital.test', '--password-stdin', '--config', configPath], { cwd: dir, input: '' }),
      withPassword('bell\u0007', 'user', 'add', 'bell@hospital.test'),
    ]);
    assertFailure(noDomain, /invalid JID "no-domain": expected name@domain/);
    assertFailure(space, /invalid JID "a b@hospital\.test"/);
    assertFailure(resource, /without \/resource/);
    assertFailure(empty, /no password on standard input/);
    assertFailure(control, /unusable password/);
  });

  it('without --password-stdin and no terminal, asks for the option instead of waiting', async () => {
    assertMisuse(await cli('user', 'add', 'tty@hospital.test'), /--password-stdin/);
  });

  it('a bad or missing config file fails with exit 1 and names the key', async () => {
    const bad = path.join(dir, 'bad.toml');
    await writeFile(bad, '[general]\nhosts = ["a.test"]\n[[listen.c2s]]\nport = 99999\n');
    assertFailure(await meerkat(['user', 'list', '--config', bad], { cwd: dir }), /bad\.toml: listen\.c2s\[0\]\.port: must be an integer between 0 and 65535/);
    assertFailure(await meerkat(['user', 'list', '-c', path.join(dir, 'none.toml')], { cwd: dir }), /none\.toml: cannot read the config file/);
  });

  it('without --config, uses ./meerkat.toml in the working directory', async () => {
    const result = await meerkat(['user', 'list', 'partners.test'], { cwd: dir });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n'), ['lab@partners.test']);
  });
});

describe('meerkat archive purge', () => {
  let dir: string;
  let configPath: string;
  const cli = (...args: string[]) => meerkat([...args, '--config', configPath], { cwd: dir });
  const nurse: UserRef = { username: 'nurse', domain: 'hospital.test' };
  const aide: UserRef = { username: 'aide', domain: 'hospital.test' };
  const day = (date: string) => Date.parse(`${date}T00:00:00Z`);

  async function withStorage<T>(work: (storage: Awaited<ReturnType<typeof openStorage>>) => Promise<T>): Promise<T> {
    const config = parseConfig(await readFile(configPath, 'utf8'), configPath);
    const storage = await openStorage(storageOptions(config), pino({ level: 'silent' }));
    try {
      return await work(storage);
    } finally {
      await storage.close();
    }
  }

  const archived = (owner: UserRef) => withStorage(async (storage) => {
    const page = await storage.archive.query({ owner, max: 100, fromEnd: false });
    return page.messages.map((m) => m.id);
  });

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'meerkat-cli-'));
    configPath = path.join(dir, 'meerkat.toml');
    await writeFile(configPath, '[general]\nhosts = ["hospital.test"]\ndata_dir = "data"\nloglevel = "warn"\n');
    const message = (owner: UserRef, id: string, date: string): ArchivedMessage => ({
      id, owner, with: 'doctor@hospital.test', withResource: '', direction: 'in', timestamp: day(date),
      stanza: `<message xmlns='jabber:client' type='chat'><body>${id}</body></message>`, body: id,
    });
    await withStorage((storage) => storage.archive.append([
      message(nurse, 'n1', '2024-03-01'), message(nurse, 'n2', '2024-06-01'), message(nurse, 'n3', '2025-01-01'),
      message(aide, 'a1', '2024-03-01'), message(aide, 'a2', '2025-01-01'),
    ]));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a date in the future is refused, and nothing is deleted', async () => {
    assertFailure(await cli('archive', 'purge', '--before', '2999-01-01'), /in the future/);
    assert.deepEqual(await archived(nurse), ['n1', 'n2', 'n3']);
  });

  it('deletes one account\'s messages before a date-time, then everyone\'s before a date', async () => {
    const one = await cli('archive', 'purge', '--before', '2024-06-01T00:00:00+00:00', '--user', 'nurse@hospital.test');
    assert.equal(one.status, 0, one.stderr);
    assert.equal(one.stdout.trim(), 'deleted 1 archived message of nurse@hospital.test received before 2024-06-01T00:00:00.000Z');
    assert.deepEqual(await archived(nurse), ['n2', 'n3']);
    assert.deepEqual(await archived(aide), ['a1', 'a2']);

    const all = await cli('archive', 'purge', '--before', '2024-12-31');
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stdout, /^deleted 2 archived messages received before 2024-12-31T00:00:00.000Z/);
    assert.deepEqual(await archived(nurse), ['n3']);
    assert.deepEqual(await archived(aide), ['a2']);
  });

  it('an account of a domain not served fails with exit 1', async () => {
    assertFailure(await cli('archive', 'purge', '--before', '2024-01-01', '--user', 'x@elsewhere.test'), /not served/);
  });
});
