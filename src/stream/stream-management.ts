/**
 * XEP-0198 stream management: the counters and the queue of unacknowledged stanzas one
 * session keeps, and what becomes of stanzas a session can no longer deliver. The stream
 * (c2s.ts) speaks the protocol; resumption.ts remembers the sessions that can be resumed.
 *
 * Counting (§4): 'h' is an xs:unsignedInt that starts at 0 when stream management is enabled,
 * goes up by one per stanza (message, presence, iq; never a nonza) and wraps from 2^32-1 to 0.
 * The server keeps two counters per session: stanzas handled from the client (answered in
 * <a h=/>), and stanzas sent to it, each kept until the client's 'h' covers it.
 */
import { el, type XmlElement } from '../xml/element.ts';
import { NS_STANZAS, StanzaError, type StanzaErrorCondition } from '../xml/errors.ts';
import type { Host } from '../router/host.ts';
import type { Router } from '../router/router.ts';
import type { Jid } from '../router/jid.ts';

export const NS_SM = 'urn:xmpp:sm:3';
const NS_DELAY = 'urn:xmpp:delay';
/** 'h' is an xs:unsignedInt: it counts modulo 2^32. */
export const H_MODULUS = 2 ** 32;

/** Stream management as configured (`[stream_management]`). */
export interface SmSettings {
  enabled: boolean;
  /** How long a resumable session whose connection was lost waits to be resumed. */
  resumeTimeoutMs: number;
  /** Most stanzas sent and not yet acknowledged; beyond it the session ends. */
  maxUnacked: number;
  /** The server sends <r/> after this many stanzas sent since its last <r/>... */
  ackRequestStanzas: number;
  /** ...or this long after a stanza went out with no <r/> behind it. */
  ackRequestDelayMs: number;
}

/** The counter value after one more stanza. */
export function nextH(h: number): number {
  return h === H_MODULUS - 1 ? 0 : h + 1;
}

/** How many stanzas lie from counter value `from` forward to `to`, across the wrap. */
export function hDistance(from: number, to: number): number {
  return (to - from + H_MODULUS) % H_MODULUS;
}

/** An 'h' attribute as an xs:unsignedInt (digits, optional '+'), or undefined if it is not one. */
export function parseH(value: string | undefined): number | undefined {
  if (value === undefined || value.length > 20 || !/^\+?[0-9]+$/.test(value)) return undefined;
  const h = Number(value);
  return h < H_MODULUS ? h : undefined;
}

/** A stanza sent to the client and not yet acknowledged. */
export interface Unacked {
  /**
   * Exactly what was written, for retransmission after a resumption. Only the text is kept
   * (not the element tree, which is several times larger and would keep the garbage collector
   * busy): the rare session that ends with stanzas unacknowledged parses them back.
   */
  xml: string;
  /** Date.now() when the server first queued it for the client. */
  queuedAt: number;
}

/** Stanzas sent to the client, oldest first, until its 'h' acknowledges them. */
export class UnackedQueue {
  private entries: Unacked[] = [];
  /** The counter value of the last stanza sent (0 before any). */
  private sent: number;

  /** `start` is the counter to begin from: 0 on a real stream, near 2^32 in tests of the wrap. */
  constructor(start = 0) {
    this.sent = start;
  }

  get length(): number {
    return this.entries.length;
  }

  /** The counter of stanzas sent (what a client that received everything reports as 'h'). */
  get sendCount(): number {
    return this.sent;
  }

  /** The last 'h' the client acknowledged. */
  get acked(): number {
    return (this.sent - this.entries.length + H_MODULUS) % H_MODULUS;
  }

  push(entry: Unacked): void {
    this.entries.push(entry);
    this.sent = nextH(this.sent);
  }

  /** True when `h` lies between the last acknowledged value and the send count. */
  canAck(h: number): boolean {
    return hDistance(this.acked, h) <= this.entries.length;
  }

  /**
   * Apply the client's 'h': drop what it covers and return how many were dropped, or
   * undefined when 'h' acknowledges more than was ever sent (or goes backwards).
   */
  ack(h: number): number | undefined {
    const count = hDistance(this.acked, h);
    if (count > this.entries.length) return undefined;
    if (count > 0) this.entries.splice(0, count);
    return count;
  }

  /** What is still unacknowledged, oldest first (kept in the queue). */
  pending(): readonly Unacked[] {
    return this.entries;
  }

  /** Empty the queue, returning what was in it, oldest first. */
  take(): Unacked[] {
    const out = this.entries;
    this.entries = [];
    return out;
  }
}

/**
 * The stream management state of one session, from <enable/> on, and when the server asks
 * for an ack (§4): after every N stanzas sent, or T after the first one no <r/> covers.
 * While a request is unanswered the count waits for its <a/> (one more <r/> in flight would
 * only be answered with a larger 'h' a little later), so a busy stream asks once per round
 * trip rather than once per N stanzas. The timer outlives requests (arming one per N stanzas
 * would cost more than the request): when it fires it requests, or waits again for the rest
 * of T from the first uncovered stanza.
 */
export class SessionSm {
  /** The SM-ID when the session can be resumed. */
  readonly id: string | undefined;
  readonly resumeTimeoutMs: number;
  /** 'h' of the stanzas handled from the client. */
  handled = 0;
  readonly unacked = new UnackedQueue();
  private readonly settings: SmSettings;
  /** Writes an <r/> to the client. */
  private readonly sendRequest: () => void;
  /** Stanzas sent since the server's last <r/>. */
  private sinceRequest = 0;
  /** An <r/> went out and no <a/> has come since. */
  private requestOutstanding = false;
  /** performance.now() when the first stanza after the last <r/> went out. */
  private uncoveredSince = 0;
  private requestTimer: NodeJS.Timeout | undefined;

  constructor(id: string | undefined, resumeTimeoutMs: number, settings: SmSettings, sendRequest: () => void) {
    this.id = id;
    this.resumeTimeoutMs = resumeTimeoutMs;
    this.settings = settings;
    this.sendRequest = sendRequest;
  }

  countInbound(): void {
    this.handled = nextH(this.handled);
  }

  /** A stanza was written to the client. */
  stanzaSent(): void {
    if (++this.sinceRequest >= this.settings.ackRequestStanzas && !this.requestOutstanding) return this.requestAck();
    if (this.sinceRequest === 1) this.uncoveredSince = performance.now();
    if (this.requestTimer === undefined) this.armTimer(this.settings.ackRequestDelayMs);
  }

  /**
   * The client's <a h=/>: false when 'h' acknowledges more than was sent. The next request
   * rides with the next stanza (or the timer), not in a write of its own.
   */
  acknowledge(h: number): boolean {
    if (this.unacked.ack(h) === undefined) return false;
    this.requestOutstanding = false;
    return true;
  }

  requestAck(): void {
    this.sinceRequest = 0;
    this.requestOutstanding = true;
    this.sendRequest();
  }

  /** A new connection took over: a request made on the lost one will not be answered. */
  forgetRequests(): void {
    this.sinceRequest = 0;
    this.requestOutstanding = false;
    this.stopTimer();
  }

  stopTimer(): void {
    clearTimeout(this.requestTimer);
    this.requestTimer = undefined;
  }

  private armTimer(delayMs: number): void {
    this.requestTimer = setTimeout(() => {
      this.requestTimer = undefined;
      if (this.sinceRequest === 0) return;
      // Timers may fire up to a millisecond early.
      const left = this.settings.ackRequestDelayMs - (performance.now() - this.uncoveredSince);
      if (left > 1) this.armTimer(left);
      else this.requestAck();
    }, delayMs);
    this.requestTimer.unref();
  }
}

/** <failed/> (§6) with a stanza error condition, and the 'h' of a timed-out session when known (§5). */
export function failedElement(condition: StanzaErrorCondition, h?: number, text?: string): XmlElement {
  return el('failed', { xmlns: NS_SM, h: h === undefined ? undefined : String(h) },
    el(condition, { xmlns: NS_STANZAS }),
    text !== undefined && el('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text));
}

/** The application condition of the stream error for an 'h' that is too high (§6). */
export function handledCountTooHigh(h: number, sendCount: number): XmlElement {
  return el('handled-count-too-high', { xmlns: NS_SM, h: String(h), 'send-count': String(sendCount) });
}

/** A stanza the session could not deliver, with when the server first queued it. */
export interface Undelivered {
  stanza: XmlElement;
  queuedAt: number;
}

/**
 * Stanzas a session that ended can no longer deliver are treated as if sent to an unavailable
 * resource (XEP-0198 §4), so none is silently lost: each message goes to the account's offline
 * storage through `message:offline` (for its bare JID), stamped with an XEP-0203 delay saying
 * when the server first queued it unless the server already stamped one; when nothing stores it,
 * a chat or normal message bounces with <service-unavailable/>. An IQ request is answered with
 * <service-unavailable/>. Presence is dropped: its sender's state is current elsewhere.
 * The hooks are fired in queue order, so storage keeps the order; returns a promise while
 * storage is still writing.
 */
export function handOver(items: readonly Undelivered[], owner: Jid, host: Host, router: Router): Promise<void> | undefined {
  const to = owner.toBare();
  const pending: Promise<void>[] = [];
  for (const { stanza, queuedAt } of items) {
    if (stanza.name === 'iq') {
      const type = stanza.attrs.type;
      if (type === 'get' || type === 'set') router.bounce(stanza, new StanzaError('service-unavailable'));
      continue;
    }
    if (stanza.name !== 'message') continue;
    const message = withDelay(stanza, host.domain, queuedAt);
    const stored = host.hooks.fire('message:offline', { stanza: message, to });
    if (stored === false) refuse(message, router);
    else if (stored !== true) pending.push(stored.then((done) => { if (!done) refuse(message, router); }));
  }
  return pending.length === 0 ? undefined : Promise.all(pending).then(() => undefined);
}

function refuse(message: XmlElement, router: Router): void {
  const type = message.attrs.type ?? 'normal';
  if (type === 'chat' || type === 'normal') router.bounce(message, new StanzaError('service-unavailable'));
}

/** XEP-0203: when the server first queued it, unless the server already stamped the message. */
function withDelay(stanza: XmlElement, domain: string, queuedAt: number): XmlElement {
  if (stanza.getChildren('delay', NS_DELAY).some((delay) => delay.attrs.from === domain)) return stanza;
  return stanza.clone().append(el('delay', { xmlns: NS_DELAY, from: domain, stamp: new Date(queuedAt).toISOString() }));
}
