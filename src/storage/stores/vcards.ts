/** vCard-temp (XEP-0054): one serialised vCard per account. */
import type { Db } from '../database.ts';
import type { UserRef, VCardStore } from '../types.ts';
import type { AccountData } from './account-data.ts';

export class SqlVCardStore implements VCardStore, AccountData {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  async get(owner: UserRef): Promise<string | undefined> {
    const row = await this.db.selectFrom('vcards').select('vcard')
      .where('domain', '=', owner.domain)
      .where('username', '=', owner.username)
      .executeTakeFirst();
    return row?.vcard;
  }

  async set(owner: UserRef, vcardXml: string): Promise<void> {
    const updated_at = Date.now();
    await this.db.insertInto('vcards')
      .values({ domain: owner.domain, username: owner.username, vcard: vcardXml, updated_at })
      .onConflict((oc) => oc.columns(['domain', 'username']).doUpdateSet({ vcard: vcardXml, updated_at }))
      .execute();
  }

  async remove(owner: UserRef): Promise<void> {
    await this.deleteAccountData(this.db, owner);
  }

  async deleteAccountData(trx: Db, owner: UserRef): Promise<void> {
    await trx.deleteFrom('vcards').where('domain', '=', owner.domain).where('username', '=', owner.username).execute();
  }
}
