/**
 * Block lists (XEP-0191) in memory: the list of every account with a bound session is kept
 * here, so the hot path (is this stanza's sender blocked?) is a few Set lookups with no
 * promise. Lists are keyed by the account's bare JID, so a caller holding a Jid looks its list
 * up with the string the Jid already has (no key built per stanza), and an empty list (almost
 * everyone's) answers without any JID lookup. Lists of accounts without a session are read
 * from storage on each use and not kept. Every change goes through `change`, which runs one change at a time per account and
 * updates storage first, then the cached Set, so the cache never holds what storage does not.
 */
import type { BlockListStore, UserRef } from '../../storage/types.ts';
import type { Jid } from '../../router/jid.ts';

export type BlockList = ReadonlySet<string>;

/**
 * XEP-0191 §6 / XEP-0016 §2.1 matching of normalised item JIDs against an address:
 * `user@domain/resource` matches only itself, `user@domain` any of its resources,
 * `domain/resource` only itself, `domain` the domain and everything at it.
 */
export function listBlocks(list: BlockList, jid: Jid): boolean {
  if (list.size === 0) return false;
  return list.has(jid.full) || list.has(jid.bare) || list.has(jid.domain);
}

/** The cache key: the account's bare JID (what `Jid.bare` is for an account's address). */
function keyOf(user: UserRef): string {
  return `${user.username}@${user.domain}`;
}

function userOf(account: Jid): UserRef {
  return { username: account.local, domain: account.domain };
}

export class BlockLists {
  private readonly store: BlockListStore;
  /** Does the account have a bound session on this node (its list is then worth keeping)? */
  private readonly online: (user: UserRef) => boolean;
  private readonly cache = new Map<string, Set<string> | Promise<Set<string>>>();
  /** Tail of the queue of changes of each account. */
  private readonly changes = new Map<string, Promise<unknown>>();

  constructor(store: BlockListStore, online: (user: UserRef) => boolean) {
    this.store = store;
    this.online = online;
  }

  /** The account's list: the cached Set when there is one, otherwise a read from storage. */
  get(user: UserRef): BlockList | Promise<BlockList> {
    return this.load(user);
  }

  /** Does `owner` block `jid`? Synchronous when the list is cached. */
  blocks(owner: UserRef, jid: Jid): boolean | Promise<boolean> {
    const list = this.load(owner);
    return list instanceof Promise ? list.then((l) => listBlocks(l, jid)) : listBlocks(list, jid);
  }

  /**
   * The per-stanza check: does the account at `owner` (an account's address, any resource)
   * block `jid`? One Map lookup by `owner.bare` when the list is cached; synchronous then.
   */
  blocksFor(owner: Jid, jid: Jid): boolean | Promise<boolean> {
    const hit = this.cache.get(owner.bare);
    if (hit === undefined) return this.blocks(userOf(owner), jid);
    if (hit instanceof Promise) return hit.then((l) => listBlocks(l, jid));
    return hit.size !== 0 && (hit.has(jid.full) || hit.has(jid.bare) || hit.has(jid.domain));
  }

  /** Start keeping an account's list (its first session bound). */
  pin(user: UserRef): void {
    void Promise.resolve(this.load(user)).catch(() => undefined);
  }

  /** Forget an account's list (its last session closed, or the account is gone). */
  forget(user: UserRef): void {
    this.cache.delete(keyOf(user));
  }

  /**
   * Apply a change: `fn` gets the current list and returns the new one (or undefined for no
   * change) after writing it to storage. Changes of one account run one after another.
   */
  change<T>(user: UserRef, fn: (current: BlockList) => Promise<{ list?: Set<string>; result: T }>): Promise<T> {
    const key = keyOf(user);
    const previous = this.changes.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(async () => {
      const current = await this.load(user);
      const { list, result } = await fn(current);
      if (list !== undefined) {
        // Only a cached entry is replaced: an account that went offline meanwhile stays uncached.
        if (this.cache.has(key)) this.cache.set(key, list);
      }
      return result;
    });
    const tail = run.catch(() => undefined);
    this.changes.set(key, tail);
    void tail.then(() => {
      if (this.changes.get(key) === tail) this.changes.delete(key);
    });
    return run;
  }

  private load(user: UserRef): Set<string> | Promise<Set<string>> {
    const key = keyOf(user);
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const loading: Promise<Set<string>> = this.store.get(user).then(
      (items) => {
        const list = new Set(items);
        if (this.cache.get(key) === loading) this.cache.set(key, list);
        return list;
      },
      (err: unknown) => {
        if (this.cache.get(key) === loading) this.cache.delete(key);
        throw err;
      },
    );
    if (this.online(user)) this.cache.set(key, loading);
    return loading;
  }
}
