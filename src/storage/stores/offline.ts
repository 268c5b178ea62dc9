/**
 * Offline messages (XEP-0160): a per-account queue in arrival order, bounded by a quota.
 * `pushMany` stores a whole batch (any accounts) in one transaction, for a WriteQueue;
 * `push` is a batch of one.
 */
import { sql } from 'kysely';
import type { Db } from '../database.ts';
import type { DialectName } from '../migrations/migration.ts';
import type { OfflineMessage, OfflinePush, OfflineStore, UserRef } from '../types.ts';
import { chunks, type AccountData } from './account-data.ts';

export class SqlOfflineStore implements OfflineStore, AccountData {
  private readonly db: Db;
  private readonly dialect: DialectName;

  constructor(db: Db, dialect: DialectName) {
    this.db = db;
    this.dialect = dialect;
  }

  async push(owner: UserRef, message: Omit<OfflineMessage, 'seq'>, quota: number): Promise<boolean> {
    const refused = await this.pushMany([{ owner, receivedAt: message.receivedAt, stanza: message.stanza }], quota);
    return refused.length === 0;
  }

  async pushMany(messages: readonly OfflinePush[], quota: number): Promise<number[]> {
    if (messages.length === 0) return [];
    const owners = new Map<string, UserRef>();
    for (const { owner } of messages) owners.set(lockKey(owner), owner);
    return this.db.transaction().execute(async (trx) => {
      // SQLite write transactions are already exclusive; on PostgreSQL two senders could
      // both count below the quota, so every account of the batch is locked for the
      // transaction, in one statement, in a fixed order (so batches cannot deadlock).
      if (this.dialect === 'postgres') {
        await sql`select pg_advisory_xact_lock(h) from (
          select distinct hashtextextended(k, 0) as h from unnest(${[...owners.keys()]}::text[]) as k order by h
        ) as locks`.execute(trx);
      }
      const held = await countsOf(trx, [...owners.values()]);
      const refused: number[] = [];
      const rows: { domain: string; username: string; received_at: number; stanza: string }[] = [];
      messages.forEach(({ owner, receivedAt, stanza }, index) => {
        const key = lockKey(owner);
        const count = held.get(key) ?? 0;
        if (count >= quota) {
          refused.push(index);
          return;
        }
        held.set(key, count + 1);
        rows.push({ domain: owner.domain, username: owner.username, received_at: receivedAt, stanza });
      });
      // Multi-row inserts number their rows in list order, so arrival order is kept.
      for (const chunk of chunks(rows, 200)) await trx.insertInto('offline_messages').values(chunk).execute();
      return refused;
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

/** How many messages each account holds, keyed by `lockKey`; one grouped query per 200 accounts. */
async function countsOf(db: Db, owners: readonly UserRef[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const chunk of chunks(owners, 200)) {
    const rows = await db.selectFrom('offline_messages')
      .select((eb) => ['domain', 'username', eb.fn.countAll<number>().as('n')])
      .where((eb) => eb.or(chunk.map((o) => eb.and([eb('domain', '=', o.domain), eb('username', '=', o.username)]))))
      .groupBy(['domain', 'username'])
      .execute();
    for (const row of rows) counts.set(lockKey(row), Number(row.n));
  }
  return counts;
}

/** One string per account: the map key here, and the advisory lock's name on PostgreSQL. */
function lockKey(owner: UserRef): string {
  return `offline:${owner.domain}:${owner.username}`;
}
