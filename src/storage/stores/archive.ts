/**
 * The message archive (XEP-0313) and archiving preferences. Schema and indexes: migration
 * 0003 (archive-tables.ts). Results are in (received_at, id) order: chronological, equal
 * timestamps by stanza-id. A page is located by the (received_at, id) key of its after/before
 * message, so paging is exact however many messages share a timestamp, and every query is one
 * index range scan. Full-text search words: archive-words.ts; kept counts: archive-counts.ts.
 */
import { sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import type { Db } from '../database.ts';
import type { DialectName } from '../migrations/migration.ts';
import type { Schema } from '../schema.ts';
import {
  ArchiveIdNotFound,
  type ArchiveDefault, type ArchivedMessage, type ArchivePage, type ArchivePrefs, type ArchiveQuery, type ArchiveStore, type UserRef,
} from '../types.ts';
import { chunks, type AccountData } from './account-data.ts';
import { addToCounts, counterKey, keptCount, keptCountQuery, type CountedRow } from './archive-counts.ts';
import type { ArchiveDb, ArchiveTables, MessagesQuery } from './archive-tables.ts';
import { ownerToken, searchWords } from './archive-words.ts';
import { compiledOnce } from '../compiled.ts';

/** Rows per multi-row INSERT: well under both dialects' parameter limits, and a stable statement for SQLite's cache. */
const INSERT_CHUNK = 100;
/** Rows per purge transaction: short enough never to hold locks for long. */
const PURGE_BATCH = 2000;

/** Position of a message in the archive's order. */
interface Key {
  received_at: number;
  id: string;
}

const MESSAGE_COLUMNS = ['id', 'with_bare', 'with_resource', 'direction', 'received_at', 'stanza', 'body'] as const;

type MessageRow = Pick<ArchiveTables['archive_messages'], (typeof MESSAGE_COLUMNS)[number]>;

export class SqlArchiveStore implements ArchiveStore, AccountData {
  private readonly db: ArchiveDb;
  private readonly dialect: DialectName;

  private readonly insertSqlite;

  constructor(db: Db, dialect: DialectName) {
    this.db = db.withTables<ArchiveTables>();
    this.dialect = dialect;
    this.insertSqlite = compiledOnce(this.db.insertInto('archive_messages')
      .values(toRow({ id: '', owner: { domain: '', username: '' }, with: '', withResource: '', direction: 'in', timestamp: 0, stanza: '', body: '' }))
      .onConflict((oc) => oc.columns(['domain', 'username', 'id']).doNothing())
      .returning('seq')
      .compile());
  }

  async append(messages: ArchivedMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      const inserted = this.dialect === 'postgres' ? await appendPostgres(trx, messages) : await this.appendSqlite(trx, messages);
      await addToCounts(trx, inserted, 1);
    });
  }

  /**
   * SQLite: one prepared single-row INSERT per message. On SQLite a statement is a call into
   * the library, not a round trip, and a multi-row INSERT ... RETURNING costs about half as
   * much again per row (it materialises its result), besides building it in Kysely each time.
   */
  private async appendSqlite(trx: ArchiveDb, messages: readonly ArchivedMessage[]): Promise<CountedRow[]> {
    const inserted: CountedRow[] = [];
    const search: { rowid: number; words: string }[] = [];
    for (const m of messages) {
      const { rows } = await trx.executeQuery(this.insertSqlite(Object.values(toRow(m))));
      if (rows.length === 0) continue; // archived already (a retried batch)
      inserted.push({ domain: m.owner.domain, username: m.owner.username, with_bare: m.with });
      const words = m.body === undefined ? [] : searchWords(m.body);
      if (words.length > 0) search.push({ rowid: rows[0].seq, words: [ownerToken(m.owner), ...words].join(' ') });
    }
    for (const chunk of chunks(search, INSERT_CHUNK)) await trx.insertInto('archive_search').values(chunk).execute();
    return inserted;
  }

  async query(query: ArchiveQuery): Promise<ArchivePage> {
    const { owner, max, fromEnd } = query;
    if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`invalid archive page size: ${max}`);
    const words = query.text === undefined ? undefined : searchWords(query.text);
    const order = fromEnd ? 'desc' : 'asc';
    const edgeIndex = (count: number, pageSize: number) => (fromEnd ? count - pageSize : 0);

    const kept = counterKey(query);
    if (kept !== undefined && query.afterId === undefined && query.beforeId === undefined) {
      // The first or last page of a whole archive or conversation, what a client loads when it
      // opens one: rows and kept count in one statement (one snapshot), no transaction around.
      const rows = await this.matching(this.db, query, undefined)
        .select(MESSAGE_COLUMNS)
        .select(keptCountQuery(this.db, owner, kept).as('kept'))
        .orderBy('received_at', order).orderBy('id', order)
        .limit(max + 1)
        .execute();
      const { messages, complete } = pageOf(owner, rows, max, fromEnd);
      const count = rows.length === 0 ? 0 : Number(rows[0].kept ?? 0);
      return { messages, complete, count, firstIndex: edgeIndex(count, messages.length) };
    }

    return this.read(async (db) => {
      // Unknown ids are an error even when the query could not match anything anyway.
      const after = query.afterId === undefined ? undefined : await keyOf(db, owner, query.afterId);
      const before = query.beforeId === undefined ? undefined : await keyOf(db, owner, query.beforeId);
      if ((words !== undefined && words.length === 0) || query.ids?.length === 0) {
        return { messages: [], complete: true, count: 0, firstIndex: 0 };
      }
      const matching = this.matching(db, query, words);

      let range = matching;
      if (after) range = range.where((eb) => keyAfter(eb, after));
      if (before) range = range.where((eb) => keyBefore(eb, before));
      const rows = await range.select(MESSAGE_COLUMNS)
        .orderBy('received_at', order).orderBy('id', order)
        .limit(max + 1)
        .execute();
      const { messages, complete } = pageOf(owner, rows, max, fromEnd);

      // firstIndex = matches before the page. At either end of the result set it follows
      // from the count; elsewhere it is the matches before a boundary key.
      const bound = fromEnd ? before : after;
      const first = messages[0];
      const boundary: Boundary | undefined = bound === undefined ? undefined
        : first !== undefined ? { key: { received_at: first.timestamp, id: first.id }, inclusive: false }
        // An empty page sits just after `after` (forward) or just before `before` (backward).
        : { key: bound, inclusive: !fromEnd };
      if (kept !== undefined) {
        // The whole archive or a whole conversation: the count is kept, not counted.
        const count = await keptCount(db, owner, kept);
        const firstIndex = boundary === undefined ? edgeIndex(count, messages.length) : await position(matching, boundary, count);
        return { messages, complete, count, firstIndex };
      }
      // Other filters: one scan of the matches counts them and, if needed, those before the
      // boundary. On SQLite a search is counted from the search index's rows (this owner's
      // matches only), not by testing each of the owner's messages against them.
      const counting = words !== undefined && this.dialect === 'sqlite' ? this.matching(db, query, words, true) : matching;
      const counted = await counting
        .select((eb) => eb.fn.countAll<number>().as('total'))
        .$if(boundary !== undefined, (qb) => qb.select((eb) =>
          eb.fn.count<number>(eb.case().when(keyBefore(eb, boundary!.key, boundary!.inclusive)).then(1).end()).as('before')))
        .executeTakeFirstOrThrow();
      const count = Number(counted.total);
      const firstIndex = boundary === undefined ? edgeIndex(count, messages.length) : Number((counted as { before?: number }).before);
      return { messages, complete, count, firstIndex };
    });
  }

  async bounds(owner: UserRef): Promise<{ first: ArchivedMessage; last: ArchivedMessage } | undefined> {
    return this.read(async (db) => {
      const edge = (order: 'asc' | 'desc') => db.selectFrom('archive_messages')
        .select(MESSAGE_COLUMNS)
        .where('domain', '=', owner.domain)
        .where('username', '=', owner.username)
        .orderBy('received_at', order).orderBy('id', order)
        .limit(1)
        .executeTakeFirst();
      const first = await edge('asc');
      const last = await edge('desc');
      if (first === undefined || last === undefined) return undefined;
      return { first: toMessage(owner, first), last: toMessage(owner, last) };
    });
  }

  async getPrefs(owner: UserRef): Promise<ArchivePrefs | undefined> {
    return this.read(async (db) => {
      const row = await db.selectFrom('archive_prefs')
        .select('default_mode')
        .where('domain', '=', owner.domain)
        .where('username', '=', owner.username)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const jids = await db.selectFrom('archive_prefs_jids')
        .select(['rule', 'jid'])
        .where('domain', '=', owner.domain)
        .where('username', '=', owner.username)
        .orderBy('rule').orderBy('jid')
        .execute();
      return {
        default: row.default_mode as ArchiveDefault,
        always: jids.filter((j) => j.rule === 'always').map((j) => j.jid),
        never: jids.filter((j) => j.rule === 'never').map((j) => j.jid),
      };
    });
  }

  async setPrefs(owner: UserRef, prefs: ArchivePrefs): Promise<void> {
    const rules = [
      ...[...new Set(prefs.always)].map((jid) => ({ rule: 'always', jid })),
      ...[...new Set(prefs.never)].map((jid) => ({ rule: 'never', jid })),
    ];
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('archive_prefs')
        .values({ domain: owner.domain, username: owner.username, default_mode: prefs.default })
        .onConflict((oc) => oc.columns(['domain', 'username']).doUpdateSet({ default_mode: prefs.default }))
        .execute();
      await trx.deleteFrom('archive_prefs_jids')
        .where('domain', '=', owner.domain)
        .where('username', '=', owner.username)
        .execute();
      for (const chunk of chunks(rules)) {
        await trx.insertInto('archive_prefs_jids')
          .values(chunk.map((r) => ({ domain: owner.domain, username: owner.username, ...r })))
          .execute();
      }
    });
  }

  /**
   * Batches of PURGE_BATCH rows, each one DELETE statement (its own short transaction), so
   * writers are never held up for long. One owner: that archive's oldest rows, by its index.
   * Every owner: a walk along the primary key (no index on the time alone, which every
   * insert would pay for), resuming after the last row each batch looked at.
   */
  async purgeBefore(timestamp: number, owner?: UserRef): Promise<number> {
    let purged = 0;
    let cursor = -1;
    for (;;) {
      const deleted = await this.db.transaction().execute(async (trx) => {
        let candidates = trx.selectFrom('archive_messages').select('seq').where('received_at', '<', timestamp);
        candidates = owner
          ? candidates.where('domain', '=', owner.domain).where('username', '=', owner.username)
            .orderBy('received_at').orderBy('id')
          : candidates.where('seq', '>', cursor).orderBy('seq');
        const rows = await trx.deleteFrom('archive_messages')
          .where('seq', 'in', candidates.limit(PURGE_BATCH))
          .returning(['seq', 'domain', 'username', 'with_bare'])
          .execute();
        await addToCounts(trx, rows, -1);
        return rows;
      });
      purged += deleted.length;
      if (deleted.length < PURGE_BATCH) return purged;
      for (const row of deleted) cursor = Math.max(cursor, row.seq);
      // Let other work on this connection (SQLite) or pool run between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Counts first: on PostgreSQL that waits for (row-locks out) appends in flight for the
   * account, so the messages they commit are seen, and deleted, by the next statement.
   * Then messages (their search rows with them, on SQLite by trigger), then preferences.
   */
  async deleteAccountData(trx: Db, owner: UserRef): Promise<void> {
    const db = trx.withTables<ArchiveTables>();
    for (const table of ['archive_counts', 'archive_messages', 'archive_prefs_jids', 'archive_prefs'] as const) {
      await db.deleteFrom(table).where('domain', '=', owner.domain).where('username', '=', owner.username).execute();
    }
  }

  /** Several reads as one consistent snapshot (a page and its count agree). */
  private read<T>(work: (db: ArchiveDb) => Promise<T>): Promise<T> {
    let transaction = this.db.transaction().setAccessMode('read only');
    if (this.dialect === 'postgres') transaction = transaction.setIsolationLevel('repeatable read');
    return transaction.execute((trx) => work(trx));
  }

  /** The owner's messages matching every filter of the query except after/before and paging. */
  private matching(db: ArchiveDb, query: ArchiveQuery, words: string[] | undefined, fromSearchIndex = false): MessagesQuery {
    const { owner } = query;
    let qb: MessagesQuery = db.selectFrom('archive_messages');
    // SQLite's unary + keeps a column from selecting an index, leaving the search's rowids
    // to drive the query.
    qb = fromSearchIndex
      ? qb.where(sql<SqlBool>`+domain = ${owner.domain} and +username = ${owner.username}`)
      : qb.where('domain', '=', owner.domain).where('username', '=', owner.username);
    if (query.with !== undefined) {
      qb = qb.where('with_bare', '=', query.with.bare);
      if (query.with.resource) qb = qb.where('with_resource', '=', query.with.resource);
    }
    if (query.start !== undefined) qb = qb.where('received_at', '>=', query.start);
    if (query.end !== undefined) qb = qb.where('received_at', '<=', query.end);
    if (query.ids !== undefined) qb = qb.where('id', 'in', [...new Set(query.ids)]);
    if (words !== undefined) {
      const terms = [ownerToken(owner), ...words];
      if (this.dialect === 'postgres') {
        // tsquery input syntax: quoted lexemes taken as they are (no parser, no normalisation).
        const tsquery = terms.map((t) => `'${t.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`).join(' & ');
        qb = qb.where(sql<SqlBool>`search @@ ${tsquery}::tsquery`);
      } else {
        // FTS5 strings, implicitly ANDed; quoting keeps words from being read as operators.
        const match = terms.map((t) => `"${t.replaceAll('"', '""')}"`).join(' ');
        qb = qb.where(sql<SqlBool>`seq in (select rowid from archive_search where archive_search match ${match})`);
      }
    }
    return qb;
  }
}

/**
 * PostgreSQL: the whole batch in one statement of constant text, a column per array
 * parameter: one round trip, and no per-row query building. A message's search words go as
 * one space-separated string (words never contain spaces). Returns the rows it inserted.
 */
async function appendPostgres(db: ArchiveDb, messages: readonly ArchivedMessage[]): Promise<CountedRow[]> {
  const column = <T>(value: (m: ArchivedMessage) => T) => messages.map(value);
  const words = column((m) => {
    const found = m.body === undefined ? [] : searchWords(m.body);
    return found.length === 0 ? null : [ownerToken(m.owner), ...found].join(' ');
  });
  const { rows } = await sql<CountedRow>`
    insert into archive_messages (domain, username, id, with_bare, with_resource, direction, received_at, stanza, body, search)
    select domain, username, id, with_bare, with_resource, direction, received_at, stanza, body,
      array_to_tsvector(string_to_array(words, ' '))
    from unnest(${column((m) => m.owner.domain)}::text[], ${column((m) => m.owner.username)}::text[], ${column((m) => m.id)}::text[],
      ${column((m) => m.with)}::text[], ${column((m) => m.withResource)}::text[], ${column((m) => m.direction)}::text[],
      ${column((m) => m.timestamp)}::bigint[], ${column((m) => m.stanza)}::text[], ${column((m) => m.body ?? null)}::text[], ${words}::text[])
      as batch (domain, username, id, with_bare, with_resource, direction, received_at, stanza, body, words)
    on conflict (domain, username, id) do nothing
    returning domain, username, with_bare`.execute(db);
  return rows;
}

/** Where the page starts: the matches before (or up to, if inclusive) the key. */
interface Boundary {
  key: Key;
  inclusive: boolean;
}

/**
 * Matches before the boundary, given the total: whichever side of the boundary looks
 * smaller, judged by where its time falls between the oldest and newest match, is counted
 * (pages are mostly read near the newest end: catching up, scrolling back). So a page's
 * index costs at most a scan of about half the matches, usually a short one.
 */
async function position(matching: MessagesQuery, boundary: Boundary, total: number): Promise<number> {
  const edge = async (order: 'asc' | 'desc') => (await matching.select('received_at')
    .orderBy('received_at', order).orderBy('id', order).limit(1).executeTakeFirst())?.received_at;
  const oldest = await edge('asc');
  const newest = await edge('desc');
  if (oldest === undefined || newest === undefined) return 0;
  const at = boundary.key.received_at;
  const nearerEnd = newest === oldest ? true : (at - oldest) / (newest - oldest) >= 0.5;
  if (nearerEnd) {
    const row = await matching.select((eb) => eb.fn.countAll<number>().as('n'))
      .where((eb) => keyAfter(eb, boundary.key, !boundary.inclusive))
      .executeTakeFirstOrThrow();
    return total - Number(row.n);
  }
  const row = await matching.select((eb) => eb.fn.countAll<number>().as('n'))
    .where((eb) => keyBefore(eb, boundary.key, boundary.inclusive))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A message as its archive_messages row; its values, in order, are the SQLite insert's parameters. */
function toRow(m: ArchivedMessage) {
  return {
    domain: m.owner.domain,
    username: m.owner.username,
    id: m.id,
    with_bare: m.with,
    with_resource: m.withResource,
    direction: m.direction,
    received_at: m.timestamp,
    stanza: m.stanza,
    // SQLite's trigger keys on the body to clean the search index; keep it null when absent.
    body: m.body ?? null,
  };
}

/** A page from rows fetched one past its size (which tells whether it is the last in its direction), oldest first. */
function pageOf(owner: UserRef, rows: readonly MessageRow[], max: number, fromEnd: boolean): { messages: ArchivedMessage[]; complete: boolean } {
  const page = rows.slice(0, max);
  if (fromEnd) page.reverse();
  return { messages: page.map((row) => toMessage(owner, row)), complete: rows.length <= max };
}

function toMessage(owner: UserRef, row: MessageRow): ArchivedMessage {
  const message: ArchivedMessage = {
    id: row.id,
    owner: { username: owner.username, domain: owner.domain },
    with: row.with_bare,
    withResource: row.with_resource,
    direction: row.direction === 'out' ? 'out' : 'in',
    timestamp: Number(row.received_at),
    stanza: row.stanza,
  };
  if (row.body !== null) message.body = row.body;
  return message;
}

async function keyOf(db: ArchiveDb, owner: UserRef, id: string): Promise<Key> {
  const row = await db.selectFrom('archive_messages')
    .select(['received_at', 'id'])
    .where('domain', '=', owner.domain)
    .where('username', '=', owner.username)
    .where('id', '=', id)
    .executeTakeFirst();
  if (row === undefined) throw new ArchiveIdNotFound(id);
  return { received_at: Number(row.received_at), id: row.id };
}

type Eb = ExpressionBuilder<Schema & ArchiveTables, 'archive_messages'>;

/**
 * (received_at, id) > key, written so that both planners see a plain range on received_at
 * (the row-value form is not an index range on every SQLite version) and check ids only
 * among messages of the same millisecond. `>=` when inclusive.
 */
function keyAfter(eb: Eb, key: Key, inclusive = false): Expression<SqlBool> {
  return eb.and([
    eb('received_at', '>=', key.received_at),
    eb.or([eb('received_at', '>', key.received_at), eb('id', inclusive ? '>=' : '>', key.id)]),
  ]);
}

/** (received_at, id) < key, or <= key when inclusive. */
function keyBefore(eb: Eb, key: Key, inclusive = false): Expression<SqlBool> {
  return eb.and([
    eb('received_at', '<=', key.received_at),
    eb.or([eb('received_at', '<', key.received_at), eb('id', inclusive ? '<=' : '<', key.id)]),
  ]);
}
