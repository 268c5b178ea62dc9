/** Opening, migrating, sharing and closing the database, on every backend. */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { pino } from 'pino';
import { openStorage, type SqlStorage } from '../../src/storage/index.ts';
import { migrations } from '../../src/storage/migrations/index.ts';
import type { ScramCredentials, UserRef } from '../../src/storage/types.ts';
import { postgresQuery, storageBackends, type OpenedBackend } from '../support/storage-backends.ts';

const silent = pino({ level: 'silent' });
const alice: UserRef = { username: 'alice', domain: 'example.com' };
const bob: UserRef = { username: 'bob', domain: 'example.com' };
const keys = { salt: Buffer.from('salt'), iterations: 4096, storedKey: Buffer.alloc(32, 1), serverKey: Buffer.alloc(32, 2) };
const creds: ScramCredentials = { 'SHA-1': keys, 'SHA-256': keys, 'SHA-512': keys };
const here = path.dirname(fileURLToPath(import.meta.url));

/** Runs sqlite-writer.ts in a child process; resolves with its exit code and stderr. */
function runWriter(file: string, prefix: string, count: number): { done: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'sqlite-writer.ts'), file, prefix, String(count)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { done: new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr }))) };
}

async function appliedMigrations(storage: SqlStorage): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(storage.db);
  return rows.map((row) => row.name);
}

for (const backend of storageBackends) {
  describe(`storage database (${backend.name})`, () => {
    let opened: OpenedBackend;
    const others: SqlStorage[] = [];

    beforeEach(async () => {
      opened = await backend.open();
    });
    afterEach(async () => {
      for (const storage of others.splice(0)) await storage.close();
      await opened.drop();
    });

    async function another(): Promise<SqlStorage> {
      const storage = await openStorage(opened.options, silent);
      others.push(storage);
      return storage;
    }

    test('every migration is applied once; reopening applies nothing and keeps the data', async () => {
      const names = Object.keys(migrations).sort();
      assert.deepEqual(await appliedMigrations(opened.storage), names);
      await opened.storage.users.create(alice, creds);
      await opened.storage.roster.put(alice, { jid: 'bob@example.com', subscription: 'both', askOut: false, askIn: false, groups: ['G'] });
      await opened.storage.close();

      const logs: string[] = [];
      const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
      for (let i = 0; i < 2; i++) {
        const reopened = await openStorage(opened.options, log);
        try {
          assert.deepEqual(await appliedMigrations(reopened), names);
          assert.equal(await reopened.users.exists(alice), true);
          assert.equal((await reopened.roster.get(alice)).version, 1);
        } finally {
          await reopened.close();
        }
      }
      assert.equal(logs.filter((line) => line.includes('applied storage migration')).length, 0);
    });

    test('a second Storage on the same database sees the first one\'s writes, and the other way round', async () => {
      const second = await another();
      assert.equal(await opened.storage.users.create(alice, creds), true);
      assert.equal(await second.users.exists(alice), true);
      assert.equal(await second.users.create(alice, creds), false);
      assert.equal(await second.roster.put(alice, { jid: 'bob@example.com', subscription: 'to', askOut: false, askIn: false, groups: [] }), 1);
      assert.equal(await opened.storage.roster.put(alice, { jid: 'carol@example.com', subscription: 'to', askOut: false, askIn: false, groups: [] }), 2);
      assert.deepEqual((await second.roster.get(alice)).items.map((item) => item.jid), ['bob@example.com', 'carol@example.com']);
      assert.equal(await second.removeAccount(alice), true);
      assert.equal(await opened.storage.users.exists(alice), false);
    });

    test('close waits for work already under way, and is idempotent; later calls fail', async () => {
      const storage = await another();
      const writes = Array.from({ length: 20 }, (_, i) => storage.roster.put(alice, {
        jid: `c${i}@example.com`, subscription: 'none', askOut: false, askIn: false, groups: [],
      }));
      const closed = storage.close();
      assert.equal(storage.close(), closed);
      const versions = await Promise.all(writes);
      await closed;
      assert.equal(Math.max(...versions), 20);
      await assert.rejects(storage.users.exists(alice));
      assert.equal((await opened.storage.roster.get(alice)).items.length, 20);
    });

    test('database errors reach the caller', async () => {
      await assert.rejects(
        opened.storage.roster.put(alice, { jid: 'x@example.com', subscription: 'sideways' as never, askOut: false, askIn: false, groups: [] }),
        /check|constraint/i,
      );
    });

    if (backend.name === 'sqlite') {
      test('SQLite runs in WAL mode with synchronous=FULL, foreign keys and a busy timeout', async () => {
        const pragma = async (name: string) => {
          const { rows } = await sql<Record<string, unknown>>`${sql.raw(`pragma ${name}`)}`.execute(opened.storage.db);
          return Object.values(rows[0])[0];
        };
        assert.equal(await pragma('journal_mode'), 'wal');
        assert.equal(await pragma('synchronous'), 2);
        assert.equal(await pragma('foreign_keys'), 1);
        assert.ok(Number(await pragma('busy_timeout')) >= 5000);
      });

      test('SQLite creates missing parent folders, and accepts :memory:', async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), 'meerkat-storage-'));
        try {
          const file = path.join(dir, 'a', 'b', 'meerkat.sqlite');
          const storage = await openStorage({ backend: 'sqlite', path: file }, silent);
          await storage.users.create(alice, creds);
          await storage.close();
          assert.ok(existsSync(file));
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
        const memory = await openStorage({ backend: 'sqlite', path: ':memory:' }, silent);
        assert.equal(await memory.users.create(alice, creds), true);
        assert.equal(await memory.users.exists(alice), true);
        await memory.close();
      });

      test('another process writes to the file while this one reads and writes it', async () => {
        assert.equal(opened.options.backend, 'sqlite');
        const file = opened.options.backend === 'sqlite' ? opened.options.path : '';
        const shared: UserRef = { username: 'shared', domain: 'example.com' };
        const count = 150;
        const writer = runWriter(file, 'child', count);
        for (let i = 0; i < count; i++) {
          await opened.storage.roster.put(shared, { jid: `parent-${i}@example.net`, subscription: 'both', askOut: false, askIn: false, groups: ['parent'] });
          await opened.storage.roster.get(shared);
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        const { code, stderr } = await writer.done;
        assert.equal(code, 0, stderr);
        assert.equal(await opened.storage.users.exists({ username: 'child', domain: 'example.com' }), true);
        const roster = await opened.storage.roster.get(shared);
        assert.equal(roster.items.length, 2 * count);
        assert.equal(roster.version, 2 * count);
      });
    }

    if (backend.name === 'sqlite') {
      test('SQLite: processes opening a fresh file at once migrate it once and all write', async () => {
        const created = await backend.create();
        try {
          const file = created.options.backend === 'sqlite' ? created.options.path : '';
          const results = await Promise.all(['p1', 'p2', 'p3'].map((prefix) => runWriter(file, prefix, 30).done));
          for (const { code, stderr } of results) assert.equal(code, 0, stderr);
          const storage = await openStorage(created.options, silent);
          try {
            assert.deepEqual(await appliedMigrations(storage), Object.keys(migrations).sort());
            assert.deepEqual(await storage.users.list('example.com'), ['p1', 'p2', 'p3']);
            assert.equal((await storage.roster.get({ username: 'shared', domain: 'example.com' })).version, 90);
          } finally {
            await storage.close();
          }
        } finally {
          await created.drop();
        }
      });
    }

    if (backend.name === 'postgres') {
      test('PostgreSQL: servers opening a fresh schema at once migrate it once', async () => {
        const created = await backend.create();
        try {
          const storages = await Promise.all([1, 2, 3].map(() => openStorage(created.options, silent)));
          try {
            for (const storage of storages) assert.deepEqual(await appliedMigrations(storage), Object.keys(migrations).sort());
            assert.equal(await storages[0].users.create(alice, creds), true);
            assert.equal(await storages[2].users.exists(alice), true);
          } finally {
            for (const storage of storages) await storage.close();
          }
        } finally {
          await created.drop();
        }
      });

      test('PostgreSQL: concurrent puts, removals, password changes and account removal neither deadlock nor fail', async () => {
        const second = await another();
        await opened.storage.users.create(alice, creds);
        const put = (storage: SqlStorage, jid: string) =>
          storage.roster.put(alice, { jid, subscription: 'both', askOut: false, askIn: false, groups: ['A', 'B'] });
        const work: Promise<unknown>[] = [];
        for (let i = 0; i < 30; i++) {
          const storage = i % 2 ? second : opened.storage;
          const jid = `c${i % 5}@example.com`;
          work.push(put(storage, jid), storage.roster.remove(alice, jid), storage.users.setCredentials(alice, creds));
          if (i % 10 === 9) work.push(storage.roster.removeAll(alice));
        }
        await Promise.all(work);
        const roster = await opened.storage.roster.get(alice);
        assert.ok(roster.version > 0);
        await Promise.all([put(opened.storage, 'z@example.com'), second.removeAccount(alice), put(second, 'y@example.com')]);
      });

      test('PostgreSQL keeps each schema to itself and creates nothing in public', async () => {
        const second = await backend.open();
        try {
          await opened.storage.users.create(alice, creds);
          await second.storage.users.create(bob, creds);
          assert.deepEqual(await opened.storage.users.list('example.com'), ['alice']);
          assert.deepEqual(await second.storage.users.list('example.com'), ['bob']);
          assert.equal(opened.options.backend === 'postgres' && second.options.backend === 'postgres', true);
          const schema = opened.options.backend === 'postgres' ? opened.options.schema : undefined;
          const tables = await postgresQuery<{ table_schema: string }>(
            `select distinct table_schema from information_schema.tables where table_name in ('users', 'roster_items', 'kysely_migration') and table_schema = $1`,
            [schema],
          );
          assert.deepEqual(tables.map((row) => row.table_schema), [schema]);
          const collations = await postgresQuery<{ collation_name: string }>(
            `select collation_name from information_schema.columns where table_schema = $1 and table_name = 'roster_items' and column_name in ('domain', 'username', 'jid')`,
            [schema],
          );
          assert.deepEqual(collations.map((row) => row.collation_name), ['C', 'C', 'C']);
        } finally {
          await second.drop();
        }
      });

      test('PostgreSQL: concurrent roster changes from two pools get distinct versions', async () => {
        const second = await another();
        const put = (storage: SqlStorage, i: number) =>
          storage.roster.put(alice, { jid: `c${i}@example.com`, subscription: 'none', askOut: false, askIn: false, groups: ['G'] });
        const versions = await Promise.all(Array.from({ length: 40 }, (_, i) => put(i % 2 ? second : opened.storage, i)));
        assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 1));
      });

      test('PostgreSQL: a bad schema name or an unreachable server is an error at open', async () => {
        const url = opened.options.backend === 'postgres' ? opened.options.url : '';
        await assert.rejects(openStorage({ backend: 'postgres', url, poolSize: 1, schema: 'bad"name' }, silent), /schema/);
        await assert.rejects(openStorage({ backend: 'postgres', url: 'postgres://postgres@127.0.0.1:1/test', poolSize: 1 }, silent));
      });
    }
  });
}
