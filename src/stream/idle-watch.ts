/**
 * XEP-0199 pings from the server on a bound stream: after `idleTimeoutMs` with nothing from the
 * peer it is pinged, and a peer that sends nothing at all within `pingTimeoutMs` of the ping is
 * taken to be gone (anything it sends shows it is alive, not only the ping's answer).
 */
import { randomString } from '../util/random.ts';

export interface IdleLimits {
  idleTimeoutMs: number;
  pingTimeoutMs: number;
}

export interface WatchedPeer {
  /** performance.now() when the peer last sent anything. */
  readonly lastActivity: number;
  ping(id: string): void;
  gone(): void;
}

export class IdleWatch {
  private pendingPing: string | undefined;
  /** performance.now() when the pending ping was sent. */
  private pingSentAt = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(limits: IdleLimits, peer: WatchedPeer) {
    const { idleTimeoutMs, pingTimeoutMs } = limits;
    this.timer = setInterval(() => {
      const now = performance.now();
      if (this.pendingPing !== undefined) {
        if (peer.lastActivity > this.pingSentAt) this.pendingPing = undefined;
        else if (now - this.pingSentAt >= pingTimeoutMs) peer.gone();
      } else if (now - peer.lastActivity >= idleTimeoutMs) {
        this.pendingPing = `ping-${randomString(6, 'base64url')}`;
        this.pingSentAt = now;
        peer.ping(this.pendingPing);
      }
    }, Math.max(100, Math.min(idleTimeoutMs, pingTimeoutMs) / 2));
    this.timer.unref();
  }

  /** An answer from the peer to the server: it may be the ping's. */
  answered(id: string | undefined): void {
    if (id === this.pendingPing) this.pendingPing = undefined;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
