/** Last activity (XEP-0012): when the account's last session ended, and its last status. */
import type { Db } from '../database.ts';
import type { LastActivity, LastActivityStore, UserRef } from '../types.ts';
import type { AccountData } from './account-data.ts';

export class SqlLastActivityStore implements LastActivityStore, AccountData {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  async get(owner: UserRef): Promise<LastActivity | undefined> {
    const row = await this.db.selectFrom('last_activity').select(['seconds', 'status'])
      .where('domain', '=', owner.domain)
      .where('username', '=', owner.username)
      .executeTakeFirst();
    return row && { timestamp: Number(row.seconds), status: row.status };
  }

  async set(owner: UserRef, activity: LastActivity): Promise<void> {
    await upsert(this.db, owner, activity);
  }

  async setMany(entries: readonly { owner: UserRef; activity: LastActivity }[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const { owner, activity } of entries) {
        const exists = await trx.selectFrom('users').select('username')
          .where('domain', '=', owner.domain).where('username', '=', owner.username)
          .executeTakeFirst();
        if (exists !== undefined) await upsert(trx, owner, activity);
      }
    });
  }

  async remove(owner: UserRef): Promise<void> {
    await this.deleteAccountData(this.db, owner);
  }

  async deleteAccountData(trx: Db, owner: UserRef): Promise<void> {
    await trx.deleteFrom('last_activity').where('domain', '=', owner.domain).where('username', '=', owner.username).execute();
  }
}

async function upsert(db: Db, owner: UserRef, activity: LastActivity): Promise<void> {
  const values = { seconds: Math.floor(activity.timestamp), status: activity.status };
  await db.insertInto('last_activity')
    .values({ domain: owner.domain, username: owner.username, ...values })
    .onConflict((oc) => oc.columns(['domain', 'username']).doUpdateSet(values))
    .execute();
}
