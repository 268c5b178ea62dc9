/** Blocking command (XEP-0191): the set of bare or full JIDs an account blocks. */
import { compiledOnce } from '../compiled.ts';
import type { Db } from '../database.ts';
import type { BlockListStore, UserRef } from '../types.ts';
import { chunks, type AccountData } from './account-data.ts';

export class SqlBlockListStore implements BlockListStore, AccountData {
  private readonly db: Db;

  private readonly listQuery;

  constructor(db: Db) {
    this.db = db;
    this.listQuery = compiledOnce(db.selectFrom('blocklist_items').select('jid')
      .where('domain', '=', '').where('username', '=', '').orderBy('jid').compile());
  }

  async get(owner: UserRef): Promise<string[]> {
    const { rows } = await this.db.executeQuery(this.listQuery([owner.domain, owner.username]));
    return rows.map((row) => row.jid);
  }

  async add(owner: UserRef, jids: string[]): Promise<void> {
    const unique = [...new Set(jids)];
    if (unique.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const batch of chunks(unique)) {
        await trx.insertInto('blocklist_items')
          .values(batch.map((jid) => ({ domain: owner.domain, username: owner.username, jid })))
          .onConflict((oc) => oc.columns(['domain', 'username', 'jid']).doNothing())
          .execute();
      }
    });
  }

  async remove(owner: UserRef, jids?: string[]): Promise<void> {
    if (jids === undefined) return this.deleteAccountData(this.db, owner);
    const unique = [...new Set(jids)];
    if (unique.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const batch of chunks(unique)) {
        await trx.deleteFrom('blocklist_items')
          .where('domain', '=', owner.domain)
          .where('username', '=', owner.username)
          .where('jid', 'in', batch)
          .execute();
      }
    });
  }

  async deleteAccountData(trx: Db, owner: UserRef): Promise<void> {
    await trx.deleteFrom('blocklist_items').where('domain', '=', owner.domain).where('username', '=', owner.username).execute();
  }
}
