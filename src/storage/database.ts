/**
 * Opens the database for either backend, applies connection settings and runs pending
 * migrations. Everything above this file speaks Kysely only.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, type Driver } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { DrainingDriver } from './draining-driver.ts';
import { StaticMigrationProvider } from './migrations/index.ts';
import type { DialectName } from './migrations/migration.ts';
import type { Schema } from './schema.ts';
import { DurableSqliteDialect } from './sqlite-dialect.ts';

export type StorageOptions =
  | { backend: 'sqlite'; path: string }
  | { backend: 'postgres'; url: string; poolSize: number; schema?: string };

export type Db = Kysely<Schema>;

export interface Database {
  readonly db: Db;
  readonly dialect: DialectName;
}

/** How long a SQLite writer waits for another process's write lock before failing. */
const SQLITE_BUSY_TIMEOUT_MS = 15_000;

export async function openDatabase(options: StorageOptions, log: Logger): Promise<Database> {
  if (options.backend === 'sqlite') return migrate({ db: openSqlite(options.path), dialect: 'sqlite' }, log);
  const schema = options.schema ?? 'public';
  return migrate({ db: openPostgres(options.url, options.poolSize, schema, log), dialect: 'postgres' }, log, schema);
}

function openSqlite(file: string): Db {
  const memory = file === ':memory:' || file === '';
  if (!memory) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const database = new BetterSqlite3(file, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    // busy_timeout first: switching to WAL needs a lock another process may hold.
    database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    // WAL: readers never block the writer (and other processes can read while we write).
    if (!memory) database.pragma('journal_mode = WAL');
    // FULL: the WAL is fsynced at every commit, so a committed message survives power loss
    // (NORMAL, the usual WAL setting, may lose the last commits).
    database.pragma('synchronous = FULL');
    database.pragma('foreign_keys = ON');
  } catch (error) {
    database.close();
    throw error;
  }
  return new Kysely<Schema>({ dialect: new DurableSqliteDialect(database) });
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function openPostgres(url: string, poolSize: number, schema: string, log: Logger): Db {
  // The name goes into a startup option and DDL, so it is restricted rather than escaped.
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name: ${schema}`);
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    application_name: 'meerkat',
    // Every connection resolves unqualified table names in our schema only.
    options: `-c search_path=${schema}`,
    types: { getTypeParser: pgTypeParser },
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', (err) => log.error({ err }, 'PostgreSQL connection error'));
  // pg-pool listens for a client's errors only while it is idle. A connection lost while
  // checked out (mid-transaction: a server restart, a terminated backend) would emit an
  // 'error' nobody handles and crash the process. The statement in flight fails anyway, and
  // the pool discards the broken client when it is released.
  pool.on('connect', (client) => client.on('error', (err) => log.debug({ err }, 'PostgreSQL connection lost')));
  return new Kysely<Schema>({ dialect: new DrainingPostgresDialect({ pool }) });
}

class DrainingPostgresDialect extends PostgresDialect {
  override createDriver(): Driver {
    return new DrainingDriver(super.createDriver());
  }
}

const INT8_OID = 20;

/** `bigint` columns (and count(*)) as numbers, checked to be exact, so both dialects return numbers. */
function pgTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === INT8_OID && format !== 'binary') {
    return (value: string) => {
      const n = Number(value);
      if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${value} exceeds Number.MAX_SAFE_INTEGER`);
      return n;
    };
  }
  return (pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => (value: string) => unknown)(oid, format);
}

async function migrate(database: Database, log: Logger, schema?: string): Promise<Database> {
  const migrator = new Migrator({
    db: database.db,
    provider: new StaticMigrationProvider(database.dialect),
    // On PostgreSQL, name the schema explicitly: the Migrator then creates it when missing and
    // looks for its bookkeeping tables there, not in whatever schema happens to have them.
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  for (const result of results ?? []) {
    if (result.status === 'Success') log.info({ migration: result.migrationName, dialect: database.dialect }, 'applied storage migration');
    else if (result.status === 'Error') log.error({ migration: result.migrationName, dialect: database.dialect }, 'storage migration failed');
  }
  if (error) {
    await database.db.destroy();
    throw error instanceof Error ? error : new Error(`storage migration failed: ${String(error)}`);
  }
  return database;
}
