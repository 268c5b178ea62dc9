/**
 * What a per-account store contributes to Storage.removeAccount: deleting every row it keeps
 * for one account, inside the caller's transaction. A new store (offline messages, archive,
 * inbox...) implements this and is listed in SqlStorage, so account removal stays one
 * transaction covering every table.
 */
import type { Db } from '../database.ts';
import type { UserRef } from '../types.ts';

export interface AccountData {
  deleteAccountData(trx: Db, owner: UserRef): Promise<void>;
}

/** Splits a list for multi-row statements, well under both dialects' bound-parameter limits. */
export function chunks<T>(items: readonly T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
