/** Accounts and their SCRAM credentials (one `user_scram` row per hash). */
import { compiledOnce } from '../compiled.ts';
import type { Db } from '../database.ts';
import type { ScramCredentials, ScramHash, UserRef, UserStore } from '../types.ts';
import type { AccountData } from './account-data.ts';

const HASHES: readonly ScramHash[] = ['SHA-1', 'SHA-256', 'SHA-512'];

export class SqlUserStore implements UserStore, AccountData {
  private readonly db: Db;

  private readonly credentialsQuery;
  private readonly existsQuery;

  constructor(db: Db) {
    this.db = db;
    this.credentialsQuery = compiledOnce(db.selectFrom('user_scram')
      .select(['hash', 'salt', 'iterations', 'stored_key', 'server_key'])
      .where('domain', '=', '').where('username', '=', '').compile());
    this.existsQuery = compiledOnce(db.selectFrom('users').select('username')
      .where('domain', '=', '').where('username', '=', '').compile());
  }

  async create(user: UserRef, credentials: ScramCredentials): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const inserted = await trx.insertInto('users')
        .values({ domain: user.domain, username: user.username, created_at: Date.now() })
        .onConflict((oc) => oc.columns(['domain', 'username']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await insertCredentials(trx, user, credentials);
      return true;
    });
  }

  async getCredentials(user: UserRef): Promise<ScramCredentials | undefined> {
    const { rows } = await this.db.executeQuery(this.credentialsQuery([user.domain, user.username]));
    const credentials: Partial<ScramCredentials> = {};
    for (const row of rows) {
      if (!(HASHES as readonly string[]).includes(row.hash)) continue;
      credentials[row.hash as ScramHash] = {
        salt: row.salt, iterations: row.iterations, storedKey: row.stored_key, serverKey: row.server_key,
      };
    }
    // The interface promises all three; an account without them cannot use SCRAM at all.
    return HASHES.every((hash) => credentials[hash]) ? (credentials as ScramCredentials) : undefined;
  }

  async setCredentials(user: UserRef, credentials: ScramCredentials): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      if (!(await exists(trx, user))) return false;
      // Upsert rather than delete-and-insert: two concurrent password changes on PostgreSQL
      // then serialise on the rows instead of one failing on a duplicate key.
      await insertCredentials(trx, user, credentials, true);
      // Keys of any hash no longer issued go.
      await trx.deleteFrom('user_scram')
        .where('domain', '=', user.domain)
        .where('username', '=', user.username)
        .where('hash', 'not in', HASHES)
        .execute();
      return true;
    });
  }

  async remove(user: UserRef): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await this.deleteAccountData(trx, user);
      const deleted = await trx.deleteFrom('users')
        .where('domain', '=', user.domain)
        .where('username', '=', user.username)
        .executeTakeFirst();
      return Number(deleted.numDeletedRows) > 0;
    });
  }

  async exists(user: UserRef): Promise<boolean> {
    const { rows } = await this.db.executeQuery(this.existsQuery([user.domain, user.username]));
    return rows.length > 0;
  }

  async list(domain: string): Promise<string[]> {
    const rows = await this.db.selectFrom('users').select('username').where('domain', '=', domain).orderBy('username').execute();
    return rows.map((row) => row.username);
  }

  /** The credentials only: the account row itself is deleted last by removeAccount. */
  async deleteAccountData(trx: Db, user: UserRef): Promise<void> {
    // Explicit, not left to the foreign-key cascade, so it holds even with FKs disabled.
    await trx.deleteFrom('user_scram').where('domain', '=', user.domain).where('username', '=', user.username).execute();
  }
}

async function exists(db: Db, user: UserRef): Promise<boolean> {
  const row = await db.selectFrom('users').select('username')
    .where('domain', '=', user.domain)
    .where('username', '=', user.username)
    .executeTakeFirst();
  return row !== undefined;
}

async function insertCredentials(trx: Db, user: UserRef, credentials: ScramCredentials, replace = false): Promise<void> {
  await trx.insertInto('user_scram').values(HASHES.map((hash) => {
    const keys = credentials[hash];
    return {
      domain: user.domain,
      username: user.username,
      hash,
      salt: keys.salt,
      iterations: keys.iterations,
      stored_key: keys.storedKey,
      server_key: keys.serverKey,
    };
  })).$if(replace, (insert) => insert.onConflict((oc) => oc.columns(['domain', 'username', 'hash']).doUpdateSet((eb) => ({
    salt: eb.ref('excluded.salt'),
    iterations: eb.ref('excluded.iterations'),
    stored_key: eb.ref('excluded.stored_key'),
    server_key: eb.ref('excluded.server_key'),
  })))).execute();
}
