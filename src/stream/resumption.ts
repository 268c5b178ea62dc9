/**
 * The sessions a client can resume (XEP-0198 §5), by SM-ID, shared by every listener so a
 * client may come back through any of them. A session stays here from <enabled resume='true'/>
 * until it ends; then its final 'h' is remembered for a while, so a client that comes back too
 * late learns from <failed h=/> which of its stanzas the server handled and resends only the
 * others.
 */
import { randomString } from '../util/random.ts';

/** How long, and for how many ended sessions, the final 'h' is kept. */
const ENDED_KEPT_MS = 60 * 60 * 1000;
const ENDED_KEPT_MAX = 10_000;

interface Ended {
  /** The account that owned it: another account learns nothing about it. */
  bare: string;
  h: number;
  endedAt: number;
}

export type Lookup<S> = { session: S } | { ended: number } | undefined;

export class ResumableSessions<S> {
  private readonly live = new Map<string, { session: S; bare: string }>();
  /** Insertion-ordered, so the oldest is first to go. */
  private readonly ended = new Map<string, Ended>();

  /** An SM-ID: unguessable, never reused while the server runs. */
  newId(): string {
    return randomString(18, 'base64url');
  }

  get size(): number {
    return this.live.size;
  }

  add(id: string, bare: string, session: S): void {
    this.live.set(id, { session, bare });
  }

  /** The session ended: forget it, remembering its final 'h'. */
  end(id: string, h: number, now = Date.now()): void {
    const entry = this.live.get(id);
    if (entry === undefined) return;
    this.live.delete(id);
    this.ended.set(id, { bare: entry.bare, h, endedAt: now });
    this.prune(now);
  }

  /** What `id` names for account `bare`: a session to resume, the 'h' of one that ended, or nothing. */
  lookup(id: string, bare: string, now = Date.now()): Lookup<S> {
    this.prune(now);
    const entry = this.live.get(id);
    if (entry !== undefined) return entry.bare === bare ? { session: entry.session } : undefined;
    const ended = this.ended.get(id);
    return ended !== undefined && ended.bare === bare ? { ended: ended.h } : undefined;
  }

  private prune(now: number): void {
    for (const [id, ended] of this.ended) {
      if (this.ended.size <= ENDED_KEPT_MAX && now - ended.endedAt < ENDED_KEPT_MS) break;
      this.ended.delete(id);
    }
  }
}
