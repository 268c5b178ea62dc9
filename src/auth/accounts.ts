/**
 * Account management shared by the CLI, in-band registration and (later) the admin API:
 * names and passwords are PRECIS-prepared here, and only salted SCRAM keys are stored.
 */
import { prepareLocalpart, PrecisError } from './precis.ts';
import { deriveCredentials } from './scram.ts';
import type { Storage, UserRef } from '../storage/types.ts';

export interface AccountEvents {
  created?(user: UserRef): void | Promise<void>;
  /** Runs before the account's data is deleted, so modules can still read it (to notify contacts). */
  removing?(user: UserRef): void | Promise<void>;
}

export class Accounts {
  private readonly storage: Storage;
  private readonly iterations: number;
  private readonly events: AccountEvents;

  constructor(storage: Storage, iterations: number, events: AccountEvents = {}) {
    this.storage = storage;
    this.iterations = iterations;
    this.events = events;
  }

  /** The account a raw username on `domain` denotes. Throws PrecisError for an invalid name. */
  static ref(username: string, domain: string): UserRef {
    return { username: prepareLocalpart(username), domain };
  }

  /** False when the account exists. Throws PrecisError for an unusable name or password. */
  async create(user: UserRef, password: string): Promise<boolean> {
    const created = await this.storage.users.create(user, await deriveCredentials(password, this.iterations));
    if (created) await this.events.created?.(user);
    return created;
  }

  /** False when there is no such account. Throws PrecisError for an unusable password. */
  async setPassword(user: UserRef, password: string): Promise<boolean> {
    return this.storage.users.setCredentials(user, await deriveCredentials(password, this.iterations));
  }

  /** Deletes the account and everything stored for it; false when there was none. */
  async remove(user: UserRef): Promise<boolean> {
    if (!(await this.storage.users.exists(user))) return false;
    await this.events.removing?.(user);
    return this.storage.removeAccount(user);
  }
}

export { PrecisError };
