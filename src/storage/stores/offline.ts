/** Offline messages (XEP-0160): a per-account queue in arrival order, bounded by a quota. */
import { sql } from 'kysely';
import type { Db } from '../database.ts';
import type { DialectName } from '../migrations/migration.ts';
import type { OfflineMessage, OfflineStore, UserRef } from '../types.ts';
import type { AccountData } from './account-data.ts';

export class SqlOfflineStore implements OfflineStore, AccountData {
  private readonly db: Db;
  private readonly dialect: DialectName;

  constructor(db: Db, dialect: DialectName) {
    this.db = db;
    this.dialect = dialect;
  }

  async push(owner: UserRef, message: Omit<OfflineMessage, 'seq'>, quota: number): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      // SQLite write transactions are already exclusive; on PostgreSQL two senders could
      // both count below the quota, so the account's queue is locked for the transaction.
      if (this.dialect === 'postgres') {
        await sql`select pg_advisory_xact_lock(hashtextextended(${`offline:${owner.domain}:${owner.username}`}, 0))`.execute(trx);
      }
      if ((await countOf(trx, owner)) >= quota) return false;
      await trx.insertInto('offline_messages')
        .values({ domain: owner.domain, username: owner.username, received_at: message.receivedAt, stanza: message.stanza })
        .execute();
      return true;
    });
  }

  async peek(owner: UserRef): Promise<OfflineMessage[]> {
    const rows = await this.db.selectFrom('offline_messages')
      .select(['seq', 'received_at', 'stanza'])
      .where('domain', '=', owner.domain)
      .where('username', '=', owner.username)
      .orderBy('seq')
      .execute();
    return rows.map((row) => ({ seq: Number(row.seq), receivedAt: Number(row.received_at), stanza: row.stanza }));
  }

  async remove(owner: UserRef, upToSeq: number): Promise<void> {
    await this.db.deleteFrom('offline_messages')
      .where('domain', '=', owner.domain)
      .where('username', '=', owner.username)
      .where('seq', '<=', upToSeq)
      .execute();
  }

  count(owner: UserRef): Promise<number> {
    return countOf(this.db, owner);
  }

  async deleteAccountData(trx: Db, owner: UserRef): Promise<void> {
    await trx.deleteFrom('offline_messages').where('domain', '=', owner.domain).where('username', '=', owner.username).execute();
  }
}

async function countOf(db: Db, owner: UserRef): Promise<number> {
  const row = await db.selectFrom('offline_messages')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('domain', '=', owner.domain)
    .where('username', '=', owner.username)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
