/**
 * Wraps a Kysely driver so that closing is orderly on both dialects: once `destroy()` is
 * called new work is refused, work that already asked for a connection (running, or still
 * queued for one) is allowed to finish, and only then is the underlying database closed.
 * Without it, pg's `pool.end()` strands callers still waiting in the pool's queue, and a
 * SQLite close could cut a transaction short.
 */
import type { DatabaseConnection, Driver, QueryCompiler, TransactionSettings } from 'kysely';

export class DrainingDriver implements Driver {
  private readonly inner: Driver;
  private active = 0;
  private closing = false;
  private drained?: () => void;

  constructor(inner: Driver) {
    this.inner = inner;
  }

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.closing) throw new Error('storage is closed');
    this.active++;
    try {
      return await this.inner.acquireConnection();
    } catch (error) {
      this.finished();
      throw error;
    }
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    try {
      await this.inner.releaseConnection(connection);
    } finally {
      this.finished();
    }
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.inner.beginTransaction(connection, settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(connection);
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.savepoint) throw new Error('savepoints are not supported by this driver');
    await this.inner.savepoint(connection, name, compile);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.rollbackToSavepoint) throw new Error('savepoints are not supported by this driver');
    await this.inner.rollbackToSavepoint(connection, name, compile);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    if (!this.inner.releaseSavepoint) throw new Error('savepoints are not supported by this driver');
    await this.inner.releaseSavepoint(connection, name, compile);
  }

  async destroy(): Promise<void> {
    this.closing = true;
    if (this.active > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    await this.inner.destroy();
  }

  private finished(): void {
    this.active--;
    if (this.active === 0) this.drained?.();
  }
}
