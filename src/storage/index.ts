/**
 * Storage entry point: `openStorage` opens SQLite (embedded default) or PostgreSQL through
 * one Kysely query layer, runs pending migrations and returns the Storage of `types.ts`.
 *
 * Layout: `database.ts` (connections, dialect settings, migrator), `migrations/` (versioned
 * schema, listed statically), `schema.ts` (table types), `stores/` (one file per store),
 * `sql-storage.ts` (the facade and account removal).
 */
import type { Logger } from 'pino';
import { openDatabase, type StorageOptions } from './database.ts';
import { SqlStorage } from './sql-storage.ts';

export type { StorageOptions } from './database.ts';
export type * from './types.ts';
export { SqlStorage } from './sql-storage.ts';

export async function openStorage(options: StorageOptions, log: Logger): Promise<SqlStorage> {
  const storageLog = log.child({ component: 'storage' });
  const database = await openDatabase(options, storageLog);
  storageLog.debug({ dialect: database.dialect }, 'storage open');
  return new SqlStorage(database, storageLog);
}
