import type { Session } from '../modules/api.ts';
import type { UserRef } from '../storage/types.ts';
import type { Jid } from './jid.ts';

/**
 * Bound sessions of this node, by bare JID then resource. The same resource maps are also
 * reachable by domain then localpart, so `ofUser` (called per stanza by modules holding a
 * UserRef) looks up strings that already exist instead of building `user@domain` each time.
 */
export class SessionRegistry {
  private readonly byBare = new Map<string, Map<string, Session>>();
  private readonly byDomain = new Map<string, Map<string, Map<string, Session>>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Register a session; returns the session it replaces (same full JID), if any. */
  add(session: Session): Session | undefined {
    const { jid } = session;
    let resources = this.byBare.get(jid.bare);
    if (resources === undefined) {
      resources = new Map();
      this.byBare.set(jid.bare, resources);
      let locals = this.byDomain.get(jid.domain);
      if (locals === undefined) {
        locals = new Map();
        this.byDomain.set(jid.domain, locals);
      }
      locals.set(jid.local, resources);
    }
    const previous = resources.get(jid.resource);
    if (previous === undefined) this.count++;
    resources.set(jid.resource, session);
    return previous;
  }

  /** Remove a session if it is still the one registered under its JID. */
  remove(session: Session): boolean {
    const { jid } = session;
    const resources = this.byBare.get(jid.bare);
    if (resources === undefined || resources.get(jid.resource) !== session) return false;
    resources.delete(jid.resource);
    if (resources.size === 0) {
      this.byBare.delete(jid.bare);
      const locals = this.byDomain.get(jid.domain);
      locals?.delete(jid.local);
      if (locals?.size === 0) this.byDomain.delete(jid.domain);
    }
    this.count--;
    return true;
  }

  get(jid: Jid): Session | undefined {
    return this.byBare.get(jid.bare)?.get(jid.resource);
  }

  /** The live resource map of a bare JID, without a copy: read it at once, don't keep it. */
  resourcesOf(bare: string): ReadonlyMap<string, Session> | undefined {
    return this.byBare.get(bare);
  }

  ofBare(bare: string): Session[] {
    return copy(this.byBare.get(bare));
  }

  ofUser(user: UserRef): Session[] {
    return copy(this.byDomain.get(user.domain)?.get(user.username));
  }

  all(): IterableIterator<Map<string, Session>> {
    return this.byBare.values();
  }
}

function copy(resources: Map<string, Session> | undefined): Session[] {
  if (resources === undefined) return [];
  const out: Session[] = [];
  for (const session of resources.values()) out.push(session);
  return out;
}
