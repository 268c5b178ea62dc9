/**
 * What a migration module exports, and the per-dialect vocabulary it writes its DDL with.
 * The same migration runs on both dialects; where they differ (column types, SQLite table
 * options) it asks the context instead of testing the dialect itself.
 */
import { sql, type ColumnDataType, type CreateTableBuilder, type Expression, type Kysely } from 'kysely';

export type ColumnType = ColumnDataType | Expression<unknown>;

export type DialectName = 'sqlite' | 'postgres';

export interface MigrationContext {
  readonly dialect: DialectName;
  readonly types: {
    /** Bytes: `blob` on SQLite, `bytea` on PostgreSQL. */
    readonly blob: ColumnType;
    /** 64-bit integer: SQLite's `integer` is already 64-bit (and is the rowid alias type); `bigint` on PostgreSQL. */
    readonly bigint: ColumnType;
    /**
     * Identifier text (domains, localparts, JIDs, names used as keys): compared and ordered
     * byte-wise. SQLite's default BINARY collation already is; on PostgreSQL `collate "C"`
     * gives the same order whatever the database's locale, and cheaper index comparisons.
     */
    readonly key: ColumnType;
  };
  /**
   * Table options for a table with a composite text key and small rows: on SQLite
   * `WITHOUT ROWID` (the rows live in the primary-key b-tree, no second lookup) and `STRICT`
   * (column types enforced). Leave it off for tables with large rows (vCards, message
   * bodies), where SQLite advises keeping the rowid. PostgreSQL: unchanged.
   */
  compact<T extends string, C extends string>(table: CreateTableBuilder<T, C>): CreateTableBuilder<T, C>;
  /** `STRICT` on SQLite, nothing on PostgreSQL. */
  strict<T extends string, C extends string>(table: CreateTableBuilder<T, C>): CreateTableBuilder<T, C>;
}

/**
 * A migration. `db` is untyped on purpose: a migration describes the schema as it was when it
 * was written, not as `schema.ts` describes it today. Never edit a released migration; add one.
 */
export interface StorageMigration {
  up(db: Kysely<any>, ctx: MigrationContext): Promise<void>;
  down?(db: Kysely<any>, ctx: MigrationContext): Promise<void>;
}

export function migrationContext(dialect: DialectName): MigrationContext {
  const sqlite = dialect === 'sqlite';
  return {
    dialect,
    types: { blob: sqlite ? 'blob' : 'bytea', bigint: sqlite ? 'integer' : 'bigint', key: sqlite ? 'text' : sql`text collate "C"` },
    compact: (table) => (sqlite ? table.modifyEnd(sql`without rowid, strict`) : table),
    strict: (table) => (sqlite ? table.modifyEnd(sql`strict`) : table),
  };
}
