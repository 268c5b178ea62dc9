/** The Storage facade: one store per concern over one Kysely instance, for either dialect. */
import type { Logger } from 'pino';
import type { Database, Db } from './database.ts';
import type { DialectName } from './migrations/migration.ts';
import type { AccountData } from './stores/account-data.ts';
import { SqlArchiveStore } from './stores/archive.ts';
import { SqlBlockListStore } from './stores/blocklist.ts';
import { SqlLastActivityStore } from './stores/last-activity.ts';
import { SqlOfflineStore } from './stores/offline.ts';
import { SqlRosterStore } from './stores/roster.ts';
import { SqlUserStore } from './stores/users.ts';
import { SqlVCardStore } from './stores/vcards.ts';
import type { Storage, UserRef } from './types.ts';

export class SqlStorage implements Storage {
  readonly dialect: DialectName;
  readonly users: SqlUserStore;
  readonly roster: SqlRosterStore;
  readonly vcards: SqlVCardStore;
  readonly blocklist: SqlBlockListStore;
  readonly lastActivity: SqlLastActivityStore;
  readonly offline: SqlOfflineStore;
  readonly archive: SqlArchiveStore;
  /** Exposed for stores added by later features; modules never see it. */
  readonly db: Db;
  private readonly log: Logger;
  /** Every store holding rows per account; removeAccount clears them all in one transaction. */
  private readonly accountData: readonly AccountData[];
  private closed?: Promise<void>;

  constructor(database: Database, log: Logger) {
    this.db = database.db;
    this.dialect = database.dialect;
    this.log = log;
    this.users = new SqlUserStore(this.db);
    this.roster = new SqlRosterStore(this.db);
    this.vcards = new SqlVCardStore(this.db);
    this.blocklist = new SqlBlockListStore(this.db);
    this.lastActivity = new SqlLastActivityStore(this.db);
    this.offline = new SqlOfflineStore(this.db, this.dialect);
    this.archive = new SqlArchiveStore(this.db, this.dialect);
    this.accountData = [this.roster, this.vcards, this.blocklist, this.lastActivity, this.offline, this.archive, this.users];
  }

  /**
   * Deletes every row of the account, then the account row, atomically. Rows left behind
   * under that name (say by an earlier `users.remove`) are cleared too, but the result says
   * whether an account existed.
   */
  async removeAccount(user: UserRef): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      for (const store of this.accountData) await store.deleteAccountData(trx, user);
      const deleted = await trx.deleteFrom('users')
        .where('domain', '=', user.domain)
        .where('username', '=', user.username)
        .executeTakeFirst();
      return Number(deleted.numDeletedRows) > 0;
    });
  }

  /** Waits for queued work, then closes the SQLite file or ends the PostgreSQL pool. Idempotent. */
  close(): Promise<void> {
    this.closed ??= this.db.destroy().then(() => this.log.debug({ dialect: this.dialect }, 'storage closed'));
    return this.closed;
  }
}
