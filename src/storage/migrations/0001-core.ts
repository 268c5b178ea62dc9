/**
 * Accounts, SCRAM credentials, roster, vCards, block lists, last activity.
 *
 * Every per-account table is keyed (domain, username[, ...]) so an account's rows are one
 * contiguous range of the primary-key index: reads are one index range scan, account removal
 * is one range delete per table. Module tables deliberately have no foreign key to `users`:
 * a module owns its data and deletes it on `user:removed` (or via Storage.removeAccount), and
 * `UserStore.remove` must be able to drop only the account row.
 */
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from './migration.ts';

const SUBSCRIPTIONS = sql`('none', 'to', 'from', 'both')`;

export async function up(db: Kysely<any>, ctx: MigrationContext): Promise<void> {
  const { blob, bigint, key } = ctx.types;

  await ctx.compact(db.schema.createTable('users')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('created_at', bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('users_pk', ['domain', 'username'])).execute();

  // One row per hash rather than twelve columns on `users`: adding a hash (SCRAM-SHA3-512)
  // needs no migration, and an account authenticated elsewhere (external auth, JWT) simply
  // has none. Credentials belong to the account row, hence the cascade.
  await ctx.compact(db.schema.createTable('user_scram')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('hash', key, (c) => c.notNull())
    .addColumn('salt', blob, (c) => c.notNull())
    .addColumn('iterations', 'integer', (c) => c.notNull())
    .addColumn('stored_key', blob, (c) => c.notNull())
    .addColumn('server_key', blob, (c) => c.notNull())
    .addPrimaryKeyConstraint('user_scram_pk', ['domain', 'username', 'hash'])
    .addForeignKeyConstraint('user_scram_user_fk', ['domain', 'username'], 'users', ['domain', 'username'], (fk) => fk.onDelete('cascade'))
    .addCheckConstraint('user_scram_iterations_check', sql`iterations > 0`)).execute();

  // The roster version lives in its own row so that bumping it (an upsert with
  // `version = version + 1 ... returning version`) is one atomic statement that also
  // serialises concurrent changes to the same roster on PostgreSQL (row lock).
  await ctx.compact(db.schema.createTable('roster_versions')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('version', bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('roster_versions_pk', ['domain', 'username'])).execute();

  await ctx.compact(db.schema.createTable('roster_items')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('jid', key, (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('subscription', 'text', (c) => c.notNull())
    .addColumn('ask_out', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('ask_in', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('ask_in_stanza', 'text')
    .addPrimaryKeyConstraint('roster_items_pk', ['domain', 'username', 'jid'])
    .addCheckConstraint('roster_items_subscription_check', sql`subscription in ${SUBSCRIPTIONS}`)
    .addCheckConstraint('roster_items_ask_check', sql`ask_out in (0, 1) and ask_in in (0, 1)`)).execute();

  // Groups in their own table rather than a JSON column: a group is a set member with its
  // own identity (uniqueness enforced by the key), "every contact in group G" and group
  // renames (shared rosters, XEP-0144-style edits) are plain indexed SQL, and the same
  // statements work on both dialects, whose JSON functions differ. Reading a roster is still
  // a single join, never a query per item.
  await ctx.compact(db.schema.createTable('roster_groups')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('jid', key, (c) => c.notNull())
    .addColumn('group_name', key, (c) => c.notNull())
    .addPrimaryKeyConstraint('roster_groups_pk', ['domain', 'username', 'jid', 'group_name'])
    .addForeignKeyConstraint('roster_groups_item_fk', ['domain', 'username', 'jid'], 'roster_items', ['domain', 'username', 'jid'], (fk) => fk.onDelete('cascade'))).execute();

  // vCards can carry a base64 photo: large rows, so a normal rowid table on SQLite.
  await ctx.strict(db.schema.createTable('vcards')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('vcard', 'text', (c) => c.notNull())
    .addColumn('updated_at', bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('vcards_pk', ['domain', 'username'])).execute();

  await ctx.compact(db.schema.createTable('blocklist_items')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('jid', key, (c) => c.notNull())
    .addPrimaryKeyConstraint('blocklist_items_pk', ['domain', 'username', 'jid'])).execute();

  await ctx.compact(db.schema.createTable('last_activity')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('seconds', bigint, (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('last_activity_pk', ['domain', 'username'])).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['last_activity', 'blocklist_items', 'vcards', 'roster_groups', 'roster_items', 'roster_versions', 'user_scram', 'users']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
