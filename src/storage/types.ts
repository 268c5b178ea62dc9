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
  /**
   * Records many in one transaction (a write queue's batch), skipping accounts that no longer
   * exist (their data is gone, and must not come back).
   */
  setMany(entries: readonly { owner: UserRef; activity: LastActivity }[]): Promise<void>;
  remove(owner: UserRef): Promise<void>;
}

/** One archived message as one side of a conversation sees it (XEP-0313). */
export interface ArchivedMessage {
  /** The XEP-0359 stanza-id the archive owner's server assigned: unique per owner and sortable. */
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

/**
 * Every field narrows the result (AND). Results are ordered by (timestamp, id): chronological,
 * with equal timestamps in id order.
 */
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
  /** Only these stanza-ids (XEP-0313 `ids`); an empty list matches nothing. */
  ids?: string[];
  /**
   * Full-text search on bodies: every word must occur as a whole word, ignoring case and Latin
   * accents (`cafe` finds "Café"); words are runs of letters, digits and marks. A text with no
   * word in it matches nothing.
   */
  text?: string;
  /** Page size; 0 returns no messages but still the count. */
  max: number;
  /** The page nearest the end (XEP-0059 `<before/>` or before-id): newest `max` before the bound. */
  fromEnd: boolean;
}

export interface ArchivePage {
  /** Oldest first. */
  messages: ArchivedMessage[];
  /** No more results beyond this page in the direction of the query. */
  complete: boolean;
  /** Total matches of the query without paging (after/before/max ignored). */
  count: number;
  /** Index of the first message of the page among all matches (for an empty page: matches before its position). */
  firstIndex: number;
}

export type ArchiveDefault = 'always' | 'never' | 'roster';

export interface ArchivePrefs {
  default: ArchiveDefault;
  always: string[];
  never: string[];
}

export interface ArchiveStore {
  /**
   * Append messages (from any owners) in one transaction. A message whose (owner, id) is
   * already archived is skipped, so retrying a batch whose commit outcome was unknown is safe.
   */
  append(messages: ArchivedMessage[]): Promise<void>;
  /** Throws ArchiveIdNotFound when afterId/beforeId is not in the owner's archive. */
  query(query: ArchiveQuery): Promise<ArchivePage>;
  /** Oldest and newest message of the owner's archive (XEP-0313 metadata). */
  bounds(owner: UserRef): Promise<{ first: ArchivedMessage; last: ArchivedMessage } | undefined>;
  getPrefs(owner: UserRef): Promise<ArchivePrefs | undefined>;
  setPrefs(owner: UserRef, prefs: ArchivePrefs): Promise<void>;
  /**
   * Delete messages older than `timestamp` (all owners, or one); returns how many. Deletes in
   * short batches, each its own transaction, so it never holds locks for long.
   */
  purgeBefore(timestamp: number, owner?: UserRef): Promise<number>;
}

export class ArchiveIdNotFound extends Error {
  constructor(readonly id: string) {
    super(`no archived message with id ${id}`);
    this.name = 'ArchiveIdNotFound';
  }
}

/** A message kept for an account that had no available resource (XEP-0160). */
export interface OfflineMessage {
  /** Position in the account's queue: delivery order, and what `remove` acknowledges up to. */
  seq: number;
  /** Unix time in milliseconds at which the server received it. */
  receivedAt: number;
  /** The message as it will be delivered, serialised. */
  stanza: string;
}

export interface OfflineStore {
  /**
   * Appends a message unless the account already holds `quota` of them; false when full.
   * The count and the insert are one transaction, so concurrent senders cannot overshoot.
   */
  push(owner: UserRef, message: Omit<OfflineMessage, 'seq'>, quota: number): Promise<boolean>;
  /** The account's messages, oldest first, left in place until `remove`. */
  peek(owner: UserRef): Promise<OfflineMessage[]>;
  /** Removes the messages up to and including `seq` (once delivered). */
  remove(owner: UserRef, upToSeq: number): Promise<void>;
  /**
   * The batched `push` (for a write queue): appends messages for any accounts in one
   * transaction, in order, and returns the indexes of those refused because their account
   * already held `quota` messages (counting the ones stored earlier in the same batch).
   */
  pushMany(messages: readonly OfflinePush[], quota: number): Promise<number[]>;
  count(owner: UserRef): Promise<number>;
}

/** One message for `OfflineStore.pushMany`. */
export interface OfflinePush {
  owner: UserRef;
  /** Unix time in milliseconds at which the server received it. */
  receivedAt: number;
  stanza: string;
}

export interface Storage {
  readonly users: UserStore;
  readonly roster: RosterStore;
  readonly vcards: VCardStore;
  readonly blocklist: BlockListStore;
  readonly lastActivity: LastActivityStore;
  readonly offline: OfflineStore;
  readonly archive: ArchiveStore;
  /** Delete the account and every row stored for it (roster, vCard, block list, last activity, offline messages, archive and its preferences). */
  removeAccount(user: UserRef): Promise<boolean>;
  /** Flush and release the database. */
  close(): Promise<void>;
}
