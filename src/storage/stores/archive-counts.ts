/**
 * The archive's kept counts (`archive_counts`): how many messages each owner keeps in all and
 * per conversation, updated in the transaction that adds or removes them, so that the count
 * of a whole archive or conversation (XEP-0059 <count/>) is read, not counted.
 */
import type { ArchiveQuery, UserRef } from '../types.ts';
import { chunks } from './account-data.ts';
import type { ArchiveDb } from './archive-tables.ts';

/** The `archive_counts` row of an owner's whole archive (no JID is empty). */
const ALL = '';

/** An archived message as the counts see it. */
export interface CountedRow {
  domain: string;
  username: string;
  with_bare: string;
}

/**
 * Adds (sign 1) or removes (sign -1) rows to the kept counts: each owner's total (with_bare
 * '') and per conversation. One upsert, keys in sorted order, so concurrent writers lock
 * count rows in the same order and cannot deadlock.
 */
export async function addToCounts(db: ArchiveDb, rows: readonly CountedRow[], sign: 1 | -1): Promise<void> {
  const deltas = new Map<string, { domain: string; username: string; with_bare: string; messages: number }>();
  const add = (domain: string, username: string, withBare: string) => {
    const key = `${domain}\0${username}\0${withBare}`;
    const entry = deltas.get(key);
    if (entry) entry.messages += sign;
    else deltas.set(key, { domain, username, with_bare: withBare, messages: sign });
  };
  for (const row of rows) {
    add(row.domain, row.username, ALL);
    add(row.domain, row.username, row.with_bare);
  }
  const sorted = [...deltas.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, delta]) => delta);
  for (const chunk of chunks(sorted)) {
    await db.insertInto('archive_counts')
      .values(chunk)
      .onConflict((oc) => oc.columns(['domain', 'username', 'with_bare'])
        .doUpdateSet((eb) => ({ messages: eb('archive_counts.messages', '+', eb.ref('excluded.messages')) })))
      .execute();
  }
}

/** The count row a query can be answered from: the whole archive, or one bare JID's conversation. */
export function counterKey(query: ArchiveQuery): string | undefined {
  if (query.start !== undefined || query.end !== undefined || query.ids !== undefined || query.text !== undefined) return undefined;
  if (query.with === undefined) return ALL;
  return query.with.resource ? undefined : query.with.bare;
}

export function keptCountQuery(db: ArchiveDb, owner: UserRef, withBare: string) {
  return db.selectFrom('archive_counts')
    .select('messages')
    .where('domain', '=', owner.domain)
    .where('username', '=', owner.username)
    .where('with_bare', '=', withBare);
}

export async function keptCount(db: ArchiveDb, owner: UserRef, withBare: string): Promise<number> {
  const row = await keptCountQuery(db, owner, withBare).executeTakeFirst();
  return row === undefined ? 0 : Number(row.messages);
}
