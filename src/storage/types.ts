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
  count(owner: UserRef): Promise<number>;
}

export interface Storage {
  readonly users: UserStore;
  readonly roster: RosterStore;
  readonly vcards: VCardStore;
  readonly blocklist: BlockListStore;
  readonly lastActivity: LastActivityStore;
  readonly offline: OfflineStore;
  /** Delete the account and every row stored for it (roster, vCard, block list, last activity, offline messages). */
  removeAccount(user: UserRef): Promise<boolean>;
  /** Flush and release the database. */
  close(): Promise<void>;
}
