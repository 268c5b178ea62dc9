/**
 * The tables as Kysely sees them. One interface per table; a store only touches its own tables.
 * Both dialects map to the same TypeScript types: integers (including PostgreSQL `bigint`,
 * parsed by the pool) are numbers, blobs are Buffers, flags are 0/1 integers.
 */
import type { Generated } from 'kysely';

/** Columns every per-account table starts with: the owner's domain, then localpart (key prefix). */
interface Owned {
  domain: string;
  username: string;
}

export interface UsersTable extends Owned {
  /** Unix time in milliseconds. */
  created_at: number;
}

export interface UserScramTable extends Owned {
  /** 'SHA-1' | 'SHA-256' | 'SHA-512' (text, so a future hash needs no migration). */
  hash: string;
  salt: Buffer;
  iterations: number;
  stored_key: Buffer;
  server_key: Buffer;
}

export interface RosterVersionsTable extends Owned {
  version: number;
}

export interface RosterItemsTable extends Owned {
  jid: string;
  name: string | null;
  subscription: string;
  ask_out: number;
  ask_in: number;
  ask_in_stanza: string | null;
}

export interface RosterGroupsTable extends Owned {
  jid: string;
  group_name: string;
}

export interface VCardsTable extends Owned {
  vcard: string;
  /** Unix time in milliseconds. */
  updated_at: number;
}

export interface BlocklistItemsTable extends Owned {
  jid: string;
}

export interface LastActivityTable extends Owned {
  /** Unix time in seconds. */
  seconds: number;
  status: string;
}

export interface OfflineMessagesTable extends Owned {
  /** Generated: one sequence for the table, so each account's rows come in arrival order. */
  seq: Generated<number>;
  /** Unix time in milliseconds. */
  received_at: number;
  stanza: string;
}

export interface Schema {
  users: UsersTable;
  user_scram: UserScramTable;
  roster_versions: RosterVersionsTable;
  roster_items: RosterItemsTable;
  roster_groups: RosterGroupsTable;
  vcards: VCardsTable;
  blocklist_items: BlocklistItemsTable;
  last_activity: LastActivityTable;
  offline_messages: OfflineMessagesTable;
}
