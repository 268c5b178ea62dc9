/**
 * Rosters: items, their groups (a child table, see migration 0001) and a per-account version
 * counter bumped in the same transaction as every change.
 *
 * Lock order: every transaction that writes a roster bumps (so locks, on PostgreSQL) the
 * version row FIRST, then touches items and groups. Changes to one roster are therefore
 * serialised and cannot deadlock each other. Removals that turn out to remove nothing roll
 * back, so the version only moves when the roster did.
 */
import type { Db } from '../database.ts';
import type { RosterItem, RosterStore, Subscription, UserRef } from '../types.ts';
import type { AccountData } from './account-data.ts';

interface JoinedRow {
  jid: string;
  name: string | null;
  subscription: string;
  ask_out: number;
  ask_in: number;
  ask_in_stanza: string | null;
  group_name: string | null;
}

export class SqlRosterStore implements RosterStore, AccountData {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  async get(owner: UserRef): Promise<{ version: number; items: RosterItem[] }> {
    // The version is read BEFORE the items, on purpose. Between the two statements another
    // writer may change the roster; read in this order, the items can only be newer than the
    // version we report, so a client caching them just fetches the roster again next time.
    // The other order could pair old items with a new version and the client would keep a
    // stale roster it believes current.
    const version = await readVersion(this.db, owner);
    const rows = await this.itemsQuery(owner).execute();
    return { version, items: collect(rows) };
  }

  async getItem(owner: UserRef, jid: string): Promise<RosterItem | undefined> {
    const rows = await this.itemsQuery(owner).where('i.jid', '=', jid).execute();
    return collect(rows)[0];
  }

  async put(owner: UserRef, item: RosterItem): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const version = await bumpVersion(trx, owner);
      const row = {
        name: item.name ?? null,
        subscription: item.subscription,
        ask_out: item.askOut ? 1 : 0,
        ask_in: item.askIn ? 1 : 0,
        ask_in_stanza: item.askInStanza ?? null,
      };
      await trx.insertInto('roster_items')
        .values({ domain: owner.domain, username: owner.username, jid: item.jid, ...row })
        .onConflict((oc) => oc.columns(['domain', 'username', 'jid']).doUpdateSet(row))
        .execute();
      await trx.deleteFrom('roster_groups')
        .where('domain', '=', owner.domain)
        .where('username', '=', owner.username)
        .where('jid', '=', item.jid)
        .execute();
      const groups = [...new Set(item.groups)];
      if (groups.length > 0) {
        await trx.insertInto('roster_groups')
          .values(groups.map((group_name) => ({ domain: owner.domain, username: owner.username, jid: item.jid, group_name })))
          .execute();
      }
      return version;
    });
  }

  async remove(owner: UserRef, jid: string): Promise<number | undefined> {
    return unlessNothingChanged(this.db.transaction().execute(async (trx) => {
      const version = await bumpVersion(trx, owner);
      await trx.deleteFrom('roster_groups')
        .where('domain', '=', owner.domain)
        .where('username', '=', owner.username)
        .where('jid', '=', jid)
        .execute();
      const deleted = await trx.deleteFrom('roster_items')
        .where('domain', '=', owner.domain)
        .where('username', '=', owner.username)
        .where('jid', '=', jid)
        .executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) throw NOTHING_CHANGED;
      return version;
    }));
  }

  /**
   * Empties the roster. The version row stays (and is bumped when anything was removed):
   * restarting the counter could hand a client a version it already cached for other items.
   */
  async removeAll(owner: UserRef): Promise<void> {
    await unlessNothingChanged(this.db.transaction().execute(async (trx) => {
      await bumpVersion(trx, owner);
      if ((await deleteItems(trx, owner)) === 0) throw NOTHING_CHANGED;
    }));
  }

  /** The account is gone: items, groups and the version row. */
  async deleteAccountData(trx: Db, owner: UserRef): Promise<void> {
    // Version row first, as everywhere (see the lock order above).
    await trx.deleteFrom('roster_versions').where('domain', '=', owner.domain).where('username', '=', owner.username).execute();
    await deleteItems(trx, owner);
  }

  /** Items with their groups in one statement: one row per (item, group), or one with a null group. */
  private itemsQuery(owner: UserRef) {
    return this.db.selectFrom('roster_items as i')
      .leftJoin('roster_groups as g', (join) => join
        .onRef('g.domain', '=', 'i.domain')
        .onRef('g.username', '=', 'i.username')
        .onRef('g.jid', '=', 'i.jid'))
      .select(['i.jid', 'i.name', 'i.subscription', 'i.ask_out', 'i.ask_in', 'i.ask_in_stanza', 'g.group_name'])
      .where('i.domain', '=', owner.domain)
      .where('i.username', '=', owner.username)
      .orderBy('i.jid')
      .orderBy('g.group_name');
  }
}

/** Thrown inside a transaction to roll it back when it turned out to change nothing. */
const NOTHING_CHANGED = Symbol('nothing changed');

async function unlessNothingChanged<T>(work: Promise<T>): Promise<T | undefined> {
  try {
    return await work;
  } catch (error) {
    if (error === NOTHING_CHANGED) return undefined;
    throw error;
  }
}

async function readVersion(db: Db, owner: UserRef): Promise<number> {
  const row = await db.selectFrom('roster_versions').select('version')
    .where('domain', '=', owner.domain)
    .where('username', '=', owner.username)
    .executeTakeFirst();
  return row?.version ?? 0;
}

/** One atomic statement: creates the counter at 1 or increments it, and returns the new value. */
async function bumpVersion(trx: Db, owner: UserRef): Promise<number> {
  const row = await trx.insertInto('roster_versions')
    .values({ domain: owner.domain, username: owner.username, version: 1 })
    .onConflict((oc) => oc.columns(['domain', 'username']).doUpdateSet((eb) => ({ version: eb('roster_versions.version', '+', 1) })))
    .returning('version')
    .executeTakeFirstOrThrow();
  return Number(row.version);
}

async function deleteItems(trx: Db, owner: UserRef): Promise<number> {
  await trx.deleteFrom('roster_groups').where('domain', '=', owner.domain).where('username', '=', owner.username).execute();
  const deleted = await trx.deleteFrom('roster_items')
    .where('domain', '=', owner.domain)
    .where('username', '=', owner.username)
    .executeTakeFirst();
  return Number(deleted.numDeletedRows);
}

function collect(rows: JoinedRow[]): RosterItem[] {
  const items: RosterItem[] = [];
  let current: RosterItem | undefined;
  for (const row of rows) {
    if (current?.jid !== row.jid) {
      current = {
        jid: row.jid,
        subscription: row.subscription as Subscription,
        askOut: row.ask_out === 1,
        askIn: row.ask_in === 1,
        groups: [],
      };
      if (row.name !== null) current.name = row.name;
      if (row.ask_in_stanza !== null) current.askInStanza = row.ask_in_stanza;
      items.push(current);
    }
    if (row.group_name !== null) current.groups.push(row.group_name);
  }
  return items;
}
