/**
 * Message archive (XEP-0313) and archiving preferences.
 *
 * `archive_messages` holds one row per message per owner, so it grows to millions of rows.
 * Every query is one owner's, in (received_at, id) order, so every index starts with the
 * owner and ends with (received_at, id): a page is one index range scan in either direction,
 * a count is a scan of the same range, and time bounds narrow the range directly:
 *
 * - (domain, username, id) unique: looks up XEP-0059 after/before ids and `ids` queries, and
 *   makes a re-appended message (a retried batch) a no-op;
 * - (domain, username, received_at, id): paging through an archive;
 * - (domain, username, with_bare, received_at, id): paging through one conversation.
 *
 * `archive_counts` keeps each archive's and conversation's message count, so a page of
 * either reports its total without scanning it.
 *
 * `seq` is a surrogate key (the rowid on SQLite, which the search index refers to). Rows hold
 * whole stanzas, so on SQLite the table keeps its rowid (no WITHOUT ROWID).
 *
 * Full-text search indexes the words of each body as the store normalises them (see
 * `searchWords` in stores/archive-words.ts), plus a token naming the owner, so a search is answered
 * from one owner's postings rather than every match in the database:
 * - PostgreSQL: a `tsvector` column built with `array_to_tsvector` (lexemes exactly as given:
 *   no parser, no stemming, no stop words) under a GIN index;
 * - SQLite: an FTS5 table, contentless (the words are not stored twice) with
 *   `contentless_delete`, the `ascii` tokenizer (which splits only on ASCII punctuation and
 *   spaces, so the words stay exactly as normalised) and `detail=none` (rowids only: the
 *   queries are AND of single words). The store writes it in the same transaction as the
 *   message; a trigger removes its row whenever a message is deleted, whatever deletes it.
 */
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from './migration.ts';

export async function up(db: Kysely<any>, ctx: MigrationContext): Promise<void> {
  const { bigint, key } = ctx.types;
  const sqlite = ctx.dialect === 'sqlite';

  let messages = db.schema.createTable('archive_messages')
    .addColumn('seq', sqlite ? 'integer' : bigint, (c) => (sqlite ? c.primaryKey() : c.primaryKey().generatedAlwaysAsIdentity()))
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('id', key, (c) => c.notNull())
    .addColumn('with_bare', key, (c) => c.notNull())
    .addColumn('with_resource', 'text', (c) => c.notNull())
    .addColumn('direction', 'text', (c) => c.notNull())
    .addColumn('received_at', bigint, (c) => c.notNull())
    .addColumn('stanza', 'text', (c) => c.notNull())
    .addColumn('body', 'text')
    .addCheckConstraint('archive_messages_direction_check', sql`direction in ('in', 'out')`);
  if (!sqlite) messages = messages.addColumn('search', sql`tsvector`);
  await ctx.strict(messages).execute();

  await db.schema.createIndex('archive_messages_id_idx').unique().on('archive_messages')
    .columns(['domain', 'username', 'id']).execute();
  await db.schema.createIndex('archive_messages_time_idx').on('archive_messages')
    .columns(['domain', 'username', 'received_at', 'id']).execute();
  await db.schema.createIndex('archive_messages_with_idx').on('archive_messages')
    .columns(['domain', 'username', 'with_bare', 'received_at', 'id']).execute();

  if (sqlite) {
    await sql`create virtual table archive_search using fts5(
      words, content = '', contentless_delete = 1, tokenize = 'ascii', detail = none
    )`.execute(db);
    await sql`create trigger archive_messages_search_delete after delete on archive_messages
      when old.body is not null
      begin delete from archive_search where rowid = old.seq; end`.execute(db);
  } else {
    await sql`create index archive_messages_search_idx on archive_messages using gin (search)`.execute(db);
  }

  // Kept counts, so the usual queries (the whole archive, one conversation) report their
  // XEP-0059 count and index without counting a possibly huge range: per owner and
  // conversation, and the owner's total under with_bare ''. Maintained by the store in the
  // transaction of every append, purge and account removal.
  await ctx.compact(db.schema.createTable('archive_counts')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('with_bare', key, (c) => c.notNull())
    .addColumn('messages', bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('archive_counts_pk', ['domain', 'username', 'with_bare'])).execute();

  await ctx.compact(db.schema.createTable('archive_prefs')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('default_mode', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('archive_prefs_pk', ['domain', 'username'])
    .addCheckConstraint('archive_prefs_default_check', sql`default_mode in ('always', 'never', 'roster')`)).execute();

  // The always/never lists as rows, like roster groups: no JSON, same SQL on both dialects.
  await ctx.compact(db.schema.createTable('archive_prefs_jids')
    .addColumn('domain', key, (c) => c.notNull())
    .addColumn('username', key, (c) => c.notNull())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('jid', key, (c) => c.notNull())
    .addPrimaryKeyConstraint('archive_prefs_jids_pk', ['domain', 'username', 'rule', 'jid'])
    .addForeignKeyConstraint('archive_prefs_jids_prefs_fk', ['domain', 'username'], 'archive_prefs', ['domain', 'username'], (fk) => fk.onDelete('cascade'))
    .addCheckConstraint('archive_prefs_jids_rule_check', sql`rule in ('always', 'never')`)).execute();
}

export async function down(db: Kysely<any>, ctx: MigrationContext): Promise<void> {
  await db.schema.dropTable('archive_prefs_jids').ifExists().execute();
  await db.schema.dropTable('archive_prefs').ifExists().execute();
  await db.schema.dropTable('archive_counts').ifExists().execute();
  if (ctx.dialect === 'sqlite') await sql`drop table if exists archive_search`.execute(db);
  await db.schema.dropTable('archive_messages').ifExists().execute();
}
