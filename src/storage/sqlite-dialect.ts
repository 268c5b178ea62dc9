/**
 * Kysely's SqliteDialect over better-sqlite3, with the driver tuned for a server that must
 * not lose writes and shares its database file with other processes (the CLI):
 *
 * - write transactions start with `BEGIN IMMEDIATE`, taking SQLite's write lock up front.
 *   A deferred `BEGIN` that reads first and then writes fails at once with SQLITE_BUSY when
 *   another process committed in between (busy_timeout cannot help there); an immediate one
 *   waits for the lock under busy_timeout instead. Read-only transactions stay deferred.
 * - migrations run in one transaction (SQLite DDL is transactional; Kysely's stock adapter
 *   says otherwise to stay conservative). With `BEGIN IMMEDIATE`, that transaction is also the
 *   cross-process migration lock.
 * - the single connection is handed out in FIFO order and prepared statements are cached.
 */
import type BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery, SqliteAdapter, SqliteDialect,
  type DatabaseConnection, type DialectAdapter, type Driver, type QueryResult, type TransactionSettings,
} from 'kysely';
import { DrainingDriver } from './draining-driver.ts';

export class DurableSqliteDialect extends SqliteDialect {
  private readonly database: BetterSqlite3.Database;

  constructor(database: BetterSqlite3.Database) {
    super({ database });
    this.database = database;
  }

  override createDriver(): Driver {
    return new DrainingDriver(new DurableSqliteDriver(this.database));
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

const STATEMENT_CACHE_SIZE = 256;

class DurableSqliteConnection implements DatabaseConnection {
  private readonly db: BetterSqlite3.Database;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();

  constructor(db: BetterSqlite3.Database) {
    this.db = db;
  }

  private prepare(sqlText: string): BetterSqlite3.Statement {
    let statement = this.statements.get(sqlText);
    if (statement) {
      // Refresh its place in the (insertion-ordered) map: least recently used goes first.
      this.statements.delete(sqlText);
    } else {
      statement = this.db.prepare(sqlText);
      if (this.statements.size >= STATEMENT_CACHE_SIZE) {
        this.statements.delete(this.statements.keys().next().value!);
      }
    }
    this.statements.set(sqlText, statement);
    return statement;
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const statement = this.prepare(compiled.sql);
    const parameters = compiled.parameters as unknown[];
    if (statement.reader) return { rows: statement.all(parameters) as R[] };
    const { changes, lastInsertRowid } = statement.run(parameters);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  async *streamQuery<R>(compiled: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    const statement = this.prepare(compiled.sql);
    if (!statement.reader) throw new Error('SQLite can only stream queries that return rows');
    for (const row of statement.iterate(compiled.parameters as unknown[])) yield { rows: [row as R] };
  }
}

class DurableSqliteDriver implements Driver {
  private readonly db: BetterSqlite3.Database;
  private readonly connection: DurableSqliteConnection;
  private readonly waiting: Array<() => void> = [];
  private busy = false;

  constructor(db: BetterSqlite3.Database) {
    this.db = db;
    this.connection = new DurableSqliteConnection(db);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.busy) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.busy = true;
    return this.connection;
  }

  async releaseConnection(): Promise<void> {
    const next = this.waiting.shift();
    if (next) {
      next(); // hand the connection straight over: `busy` stays true
      return;
    }
    this.busy = false;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const mode = settings.accessMode === 'read only' ? 'deferred' : 'immediate';
    await connection.executeQuery(CompiledQuery.raw(`begin ${mode}`));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint ${quoteIdentifier(name)}`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to ${quoteIdentifier(name)}`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release ${quoteIdentifier(name)}`));
  }

  /** Closing the last connection checkpoints the WAL into the database file. */
  async destroy(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
