/**
 * Every migration, in order. Static imports, no filesystem discovery: this works the same
 * under tsx, a bundler or compiled output. To change the schema, add a file `NNNN-what.ts`
 * exporting a StorageMigration and list it here; Kysely's Migrator applies names in
 * lexicographic order, so keep the zero-padded prefix.
 */
import type { Migration, MigrationProvider } from 'kysely';
import { migrationContext, type DialectName, type StorageMigration } from './migration.ts';
import * as core from './0001-core.ts';
import * as offline from './0002-offline.ts';
import * as archive from './0003-archive.ts';

export const migrations: Readonly<Record<string, StorageMigration>> = {
  '0001-core': core,
  '0002-offline': offline,
  '0003-archive': archive,
};

/** Hands Kysely's Migrator the migrations above, bound to the dialect they run on. */
export class StaticMigrationProvider implements MigrationProvider {
  private readonly dialect: DialectName;

  constructor(dialect: DialectName) {
    this.dialect = dialect;
  }

  async getMigrations(): Promise<Record<string, Migration>> {
    const ctx = migrationContext(this.dialect);
    const bound: Record<string, Migration> = {};
    for (const [name, migration] of Object.entries(migrations)) {
      const { down } = migration;
      bound[name] = {
        up: (db) => migration.up(db, ctx),
        ...(down ? { down: (db) => down.call(migration, db, ctx) } : {}),
      };
    }
    return bound;
  }
}
