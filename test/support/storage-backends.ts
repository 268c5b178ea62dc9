/**
 * The storage backends every storage test (and any test that wants a real database) runs
 * against: SQLite in a temporary file, and PostgreSQL in a fresh random schema that `drop()`
 * removes. PostgreSQL is at MEERKAT_TEST_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432/test); set it to `off` to run SQLite only.
 *
 *   for (const backend of storageBackends) {
 *     describe(backend.name, () => {
 *       let opened: OpenedBackend;
 *       beforeEach(async () => { opened = await backend.open(); });
 *       afterEach(() => opened.drop());
 *       ...
 *     });
 *   }
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import { openStorage, type SqlStorage, type StorageOptions } from '../../src/storage/index.ts';

export const POSTGRES_URL = process.env.MEERKAT_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface OpenedBackend {
  /** Open and migrated; `drop()` closes it. */
  readonly storage: SqlStorage;
  /** Opens the same database again (another Storage instance, as a second process would). */
  readonly options: StorageOptions;
  /** Closes `storage` and deletes the database (file folder or schema). Idempotent. */
  drop(): Promise<void>;
}

export interface StorageBackend {
  readonly name: 'sqlite' | 'postgres';
  /** A fresh, empty database. `log` defaults to a silent logger. */
  open(log?: Logger): Promise<OpenedBackend>;
  /** Only the options of a fresh database (nothing opened yet) and how to delete it; for servers under test. */
  create(): Promise<{ options: StorageOptions; drop(): Promise<void> }>;
}

const silent = pino({ level: 'silent' });

async function openWith(
  created: { options: StorageOptions; drop(): Promise<void> },
  log: Logger,
): Promise<OpenedBackend> {
  let storage: SqlStorage;
  try {
    storage = await openStorage(created.options, log);
  } catch (error) {
    await created.drop();
    throw error;
  }
  let dropped: Promise<void> | undefined;
  return {
    storage,
    options: created.options,
    drop: () => (dropped ??= storage.close().finally(() => created.drop())),
  };
}

const sqlite: StorageBackend = {
  name: 'sqlite',
  async create() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'meerkat-storage-'));
    return {
      options: { backend: 'sqlite', path: path.join(dir, 'meerkat.sqlite') },
      drop: () => rm(dir, { recursive: true, force: true }),
    };
  },
  async open(log = silent) {
    return openWith(await this.create(), log);
  },
};

const postgres: StorageBackend = {
  name: 'postgres',
  async create() {
    const schema = `meerkat_test_${randomBytes(6).toString('hex')}`;
    return {
      // The storage creates the schema when it opens.
      options: { backend: 'postgres', url: POSTGRES_URL, poolSize: 4, schema },
      drop: () => dropSchema(schema),
    };
  },
  async open(log = silent) {
    return openWith(await this.create(), log);
  },
};

/** Runs one statement on a short-lived connection outside any Storage. */
export async function postgresQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function dropSchema(schema: string): Promise<void> {
  await postgresQuery(`drop schema if exists "${schema}" cascade`);
}

export const storageBackends: readonly StorageBackend[] =
  process.env.MEERKAT_TEST_POSTGRES_URL === 'off' ? [sqlite] : [sqlite, postgres];
