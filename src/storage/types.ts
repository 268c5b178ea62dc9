/**
 * The storage boundary. Every backend (SQLite now, PostgreSQL next) implements these
 * interfaces; nothing above this layer sees SQL. Accounts are addressed by their normalised
 * localpart and domain, contacts by normalised bare JID strings.
 */

export interface UserRef {
  username: string;
  domain: string;
}

export type ScramHash = 'SHA-1' | 'SHA-256' | 'SHA-512';

/** Salted SCRAM keys for one hash (RFC 5802 §3). The password itself is never stored. */
export interface ScramKeys {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export type ScramCredentials = Record<ScramHash, ScramKeys>;

export interface UserStore {
  /** False when the account already exists. */
  create(user: UserRef, credentials: ScramCredentials): Promise<boolean>;
  getCredentials(user: UserRef): Promise<ScramCredentials | undefined>;
  /** False when there is no such account. */
  setCredentials(user: UserRef, credentials: ScramCredentials): Promise<boolean>;
  /** False when there is no such account. Only the account row: modules remove their own data on `user:removed`. */
  remove(user: UserRef): Promise<boolean>;
  exists(user: UserRef): Promise<boolean>;
  list(domain: string): Promise<string[]>;
}

export type Subscription = 'none' | 'to' | 'from' | 'both';

/** One roster row: RFC 6121 §2.1.2 item plus the server-side subscription sub-states of §3. */
export interface RosterItem {
  jid: string;
  name?: string;
  subscription: Subscription;
  /** We asked to subscribe to the contact's presence and they have not answered ("pending out"). */
  askOut: boolean;
  /** The contact asked to subscribe to ours and the user has not answered ("pending in"). */
  askIn: boolean;
  /** The subscription request as received, redelivered at each login while pending (RFC 6121 §3.1.3). */
  askInStanza?: string;
  groups: string[];
}

export interface RosterStore {
  /** All items of an account, with the roster version (a counter bumped on every change). */
  get(owner: UserRef): Promise<{ version: number; items: RosterItem[] }>;
  getItem(owner: UserRef, jid: string): Promise<RosterItem | undefined>;
  /** Insert or replace one item; returns the new roster version. */
  put(owner: UserRef, item: RosterItem): Promise<number>;
  /** Returns the new roster version, or undefined when there was no such item. */
  remove(owner: UserRef, jid: string): Promise<number | undefined>;
  removeAll(owner: UserRef): Promise<void>;
}

export interface VCardStore {
  /** The stored vCard as serialised XML, or undefined. */
  get(owner: UserRef): Promise<string | undefined>;
  set(owner: UserRef, vcardXml: string): Promise<void>;
  remove(owner: UserRef): Promise<void>;
}

export interface BlockListStore {
  get(owner: UserRef): Promise<string[]>;
  add(owner: UserRef, jids: string[]): Promise<void>;
  /** Remove the given JIDs, or every JID when `jids` is undefined. */
  remove(owner: UserRef, jids?: string[]): Promise<void>;
}

export interface LastActivity {
  /** Unix time in seconds when the last session ended. */
  timestamp: number;
  status: string;
}

export interface LastActivityStore {
  get(owner: UserRef): Promise<LastActivity | undefined>;
  set(owner: UserRef, activity: LastActivity): Promise<void>;
  remove(owner: UserRef): Promise<void>;
}

/** One archived message as one side of a conversation sees it (XEP-0313). */
export interface ArchivedMessage {
  /** The XEP-0359 stanza-id the archive owner's server assigned: unique and sortable. */
  id: string;
  owner: UserRef;
  /** Bare JID of the other party. */
  with: string;
  /** Resource of the other party ('' when none), so `with` queries can match a full JID. */
  withResource: string;
  direction: 'in' | 'out';
  /** Milliseconds since the epoch at which the server received the message. */
  timestamp: number;
  /** The message as routed, serialised. */
  stanza: string;
  /** The body text, for full-text search; undefined when the message had none. */
  body?: string;
}

export interface ArchiveQuery {
  owner: UserRef;
  /** Bare JID (matches every resource) or full JID (matches exactly). */
  with?: { bare: string; resource?: string };
  /** Inclusive bounds, ms since the epoch. */
  start?: number;
  end?: number;
  /** Exclusive bounds by stanza-id (XEP-0059 after/before); each must exist in the archive. */
  afterId?: string;
  beforeId?: string;
  ids?: string[];
  /** Full-text search on bodies: every word must occur. */
  text?: string;
  max: number;
  /** The page nearest the end (XEP-0059 `<before/>` or before-id): newest `max` before the bound. */
  fromEnd: boolean;
}

export interface ArchivePage {
  /** Oldest first. */
  messages: ArchivedMessage[];
  /** No more results beyond this page in the direction of the query. */
  complete: boolean;
  /** Total matches of the query without paging. */
  count: number;
  /** Index of the first message of the page among all matches. */
  firstIndex: number;
}

export type ArchiveDefault = 'always' | 'never' | 'roster';

export interface ArchivePrefs {
  default: ArchiveDefault;
  always: string[];
  never: string[];
}

export interface ArchiveStore {
  /** Append messages (from any owners) in one transaction. */
  append(messages: ArchivedMessage[]): Promise<void>;
  /** Throws ArchiveIdNotFound when afterId/beforeId is not in the owner's archive. */
  query(query: ArchiveQuery): Promise<ArchivePage>;
  /** Oldest and newest message of the owner's archive (XEP-0313 metadata). */
  bounds(owner: UserRef): Promise<{ first: ArchivedMessage; last: ArchivedMessage } | undefined>;
  getPrefs(owner: UserRef): Promise<ArchivePrefs | undefined>;
  setPrefs(owner: UserRef, prefs: ArchivePrefs): Promise<void>;
  /** Delete messages older than `timestamp` (all owners, or one); returns how many. */
  purgeBefore(timestamp: number, owner?: UserRef): Promise<number>;
}

export class ArchiveIdNotFound extends Error {
  constructor(readonly id: string) {
    super(`no archived message with id ${id}`);
  }
}

/** A message stored for an account that was offline (XEP-0160). */
export interface OfflineMessage {
  owner: UserRef;
  /** Milliseconds since the epoch at which the server received it (for the XEP-0203 delay). */
  timestamp: number;
  stanza: string;
}

export interface OfflineStore {
  /**
   * Store messages (any owners) in one transaction, oldest first. A message whose owner already
   * holds `quota` messages is not stored: its index is returned among the refused ones.
   */
  push(messages: OfflineMessage[], quota: number): Promise<number[]>;
  count(owner: UserRef): Promise<number>;
  /** The owner's messages, oldest first, without removing them. */
  peek(owner: UserRef): Promise<(OfflineMessage & { seq: number })[]>;
  /** Remove delivered messages up to and including `seq`. */
  remove(owner: UserRef, upToSeq: number): Promise<void>;
}

export interface Storage {
  readonly users: UserStore;
  readonly roster: RosterStore;
  readonly vcards: VCardStore;
  readonly blocklist: BlockListStore;
  readonly lastActivity: LastActivityStore;
  readonly archive: ArchiveStore;
  readonly offline: OfflineStore;
  /** Delete the account and every row stored for it (roster, vCard, block list, last activity, archive, offline). */
  removeAccount(user: UserRef): Promise<boolean>;
  /** Flush and release the database. */
  close(): Promise<void>;
}
