import type { Session } from '../modules/api.ts';
import type { UserRef } from '../storage/types.ts';
import type { Jid } from './jid.ts';

/** Bound sessions of this node, by bare JID then resource. */
export class SessionRegistry {
  private readonly byBare = new Map<string, Map<string, Session>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Register a session; returns the session it replaces (same full JID), if any. */
  add(session: Session): Session | undefined {
    let resources = this.byBare.get(session.jid.bare);
    if (resources === undefined) {
      resources = new Map();
      this.byBare.set(session.jid.bare, resources);
    }
    const previous = resources.get(session.jid.resource);
    if (previous === undefined) this.count++;
    resources.set(session.jid.resource, session);
    return previous;
  }

  /** Remove a session if it is still the one registered under its JID. */
  remove(session: Session): boolean {
    const resources = this.byBare.get(session.jid.bare);
    if (resources === undefined || resources.get(session.jid.resource) !== session) return false;
    resources.delete(session.jid.resource);
    if (resources.size === 0) this.byBare.delete(session.jid.bare);
    this.count--;
    return true;
  }

  get(jid: Jid): Session | undefined {
    return this.byBare.get(jid.bare)?.get(jid.resource);
  }

  ofBare(bare: string): Session[] {
    const resources = this.byBare.get(bare);
    return resources === undefined ? [] : [...resources.values()];
  }

  ofUser(user: UserRef): Session[] {
    return this.ofBare(`${user.username}@${user.domain}`);
  }

  all(): IterableIterator<Map<string, Session>> {
    return this.byBare.values();
  }
}
