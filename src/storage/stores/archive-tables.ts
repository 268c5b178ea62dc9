/** The archive's tables (migration 0003), used by the archive store (archive.ts) alone. */
import type { Generated, Kysely, SelectQueryBuilder } from 'kysely';
import type { Schema } from '../schema.ts';

export type ArchiveTables = {
  archive_messages: {
    seq: Generated<number>;
    domain: string;
    username: string;
    id: string;
    with_bare: string;
    with_resource: string;
    direction: string;
    /** Unix time in milliseconds. */
    received_at: number;
    stanza: string;
    body: string | null;
    /** PostgreSQL only: the body's words and the owner token as a tsvector. Never selected. */
    search: Generated<unknown>;
  };
  /** SQLite only: FTS5, contentless; `rowid` is archive_messages.seq. */
  archive_search: { rowid: number; words: string };
  /** Kept counts: per owner and conversation, and the owner's total under with_bare ''. */
  archive_counts: { domain: string; username: string; with_bare: string; messages: number };
  archive_prefs: { domain: string; username: string; default_mode: string };
  archive_prefs_jids: { domain: string; username: string; rule: string; jid: string };
};

export type ArchiveDb = Kysely<Schema & ArchiveTables>;
export type MessagesQuery = SelectQueryBuilder<Schema & ArchiveTables, 'archive_messages', object>;
