/**
 * One client-to-server stream (RFC 6120): the state machine from the first header through
 * STARTTLS, SASL and resource binding to a bound session that sends and receives stanzas.
 * Transport-agnostic: it sees only a StreamTransport.
 *
 * With XEP-0198 stream management the object outlives its connection: a resumable session
 * whose connection is lost hibernates (still registered, queueing what it is sent) until a new
 * stream of the same account resumes it, which hands its transport over to this object, or
 * until it times out and ends, its undelivered messages going to offline storage.
 */
import { randomString } from '../util/random.ts';
import type { Logger } from 'pino';
import { el, flatString, type XmlElement } from '../xml/element.ts';
import { parseStoredElement } from '../xml/stored.ts';
import { StanzaError, errorReply, streamErrorElement, type StreamErrorCondition } from '../xml/errors.ts';
import type { OutboundFilter, Session } from '../modules/api.ts';
import type { UserRef } from '../storage/types.ts';
import type { Host } from '../router/host.ts';
import type { DeliveryGate } from '../router/hooks.ts';
import { Jid, tryParseJid } from '../router/jid.ts';
import type { StreamEvents, StreamTransport } from '../transports/transport.ts';
import { offeredMechanisms } from '../auth/sasl.ts';
import { NS_SASL, SaslNegotiator } from './sasl-negotiator.ts';
import { bindResource, NS_BIND, NS_SESSION } from './bind.ts';
import type { StreamEnvironment } from './environment.ts';
import { IdleWatch } from './idle-watch.ts';
import { InputSequencer, type SequencedStream, type Work } from './input-sequencer.ts';
import { failedElement, handledCountTooHigh, handOver, NS_SM, parseH, SessionSm, type Undelivered } from './stream-management.ts';

export const NS_STREAM = 'http://etherx.jabber.org/streams';
export const NS_CLIENT = 'jabber:client';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_PING = 'urn:xmpp:ping';
const ACK_REQUEST = el('r', { xmlns: NS_SM }).toString();
/** Major version 1 compared numerically (leading zeros allowed), any minor version. */
const SUPPORTED_VERSION = /^0*1\.[0-9]+$/;

/**
 * 'hibernating': the session is bound but its connection is gone, waiting to be resumed.
 * 'closed': the stream ended, or handed its connection to the session it resumed.
 */
type Phase = 'header' | 'negotiating' | 'bound' | 'hibernating' | 'closed';

export class C2SStream implements Session {
  readonly id = randomString(9, 'base64url');
  private transport: StreamTransport;
  private env: StreamEnvironment;
  private readonly log: Logger;
  private phase: Phase = 'header';
  private headerSent = false;
  private host: Host | undefined;
  private sasl: SaslNegotiator | undefined;
  private username: string | undefined;
  private boundJid: Jid | undefined;
  private readonly input = new InputSequencer(this.sequenced());
  private filter: OutboundFilter | undefined;
  /** Stream management, once the client enabled it. */
  private sm: SessionSm | undefined;
  private hibernation: NodeJS.Timeout | undefined;
  /** A new connection took the session over and <resumed/> has not gone out yet: write nothing before it. */
  private resuming = false;
  /** Counts takeovers: only the latest one's <resumed/> goes out (an earlier connection may be gone already). */
  private takeovers = 0;
  private closedCleanly = false;
  /** The peer closed its stream and then the connection, and the stream has not closed yet. */
  private connectionGone = false;
  private closedReported = false;
  /** Until the stream is authenticated and bound. */
  private readonly authTimer: NodeJS.Timeout;
  /** While bound and connected. */
  private idleWatch: IdleWatch | undefined;

  presence: XmlElement | undefined = undefined;
  priority = 0;
  interested = false;
  rosterRequested = false;
  readonly data = new Map<string, unknown>();

  constructor(transport: StreamTransport, env: StreamEnvironment) {
    this.transport = transport;
    this.env = env;
    this.log = env.log.child({ stream: this.id });
    this.authTimer = setTimeout(() => this.close('connection-timeout', 'authentication took too long'), env.limits.authTimeoutMs);
    this.authTimer.unref();
    transport.bind(this.eventsOf(transport));
  }

  /** Events of a transport, ignored once another one has taken its place (after a resumption). */
  private eventsOf(transport: StreamTransport): StreamEvents {
    const current = () => transport === this.transport;
    return {
      streamStart: (name, attrs) => { if (current()) this.onHeader(name, attrs); },
      stanza: (element) => { if (current()) this.input.push(element); },
      streamEnd: () => { if (current()) this.onPeerClose(); },
      xmlError: (condition, text) => { if (current()) this.close(condition as StreamErrorCondition, text); },
      closed: () => { if (current()) this.onTransportClosed(); },
    };
  }

  get jid(): Jid {
    if (this.boundJid === undefined) throw new Error('stream is not bound');
    return this.boundJid;
  }

  get user(): UserRef {
    return { username: this.jid.local, domain: this.jid.domain };
  }

  get secure(): boolean {
    return this.transport.secure;
  }

  get isBound(): boolean {
    return this.phase === 'bound';
  }

  /** Bound, connected or waiting to be resumed. */
  private get live(): boolean {
    return this.phase === 'bound' || this.phase === 'hibernating';
  }

  get outboundFilter(): OutboundFilter | undefined {
    return this.filter;
  }

  send(stanza: XmlElement): void {
    if (this.phase !== 'closed' && this.filter?.hold(stanza) === true) return;
    this.deliver(stanza);
  }

  deliver(stanza: XmlElement): void {
    if (this.phase === 'closed' || this.connectionGone) return this.undeliverable([{ stanza, queuedAt: Date.now() }]);
    const sm = this.sm;
    if (sm === undefined) {
      this.transport.send(stanza);
      return;
    }
    const xml = flatString(stanza.toString());
    sm.unacked.push({ xml, queuedAt: Date.now() });
    // A client that stops acknowledging ends its session: what it was sent goes offline.
    const max = this.env.streamManagement.maxUnacked;
    if (sm.unacked.length > max) return this.close('policy-violation', `more than ${max} stanzas left unacknowledged`);
    if (this.phase === 'bound' && !this.resuming) {
      this.transport.send(xml);
      sm.stanzaSent();
    }
  }

  setOutboundFilter(filter: OutboundFilter | undefined): void {
    this.filter = filter;
  }

  close(condition?: StreamErrorCondition, text?: string): void {
    this.closeWith(condition, text);
  }

  private closeWith(condition?: StreamErrorCondition, text?: string, appCondition?: XmlElement): void {
    if (this.phase === 'closed') return;
    // No connection to say goodbye on: the session just ends.
    if (this.phase === 'hibernating') return this.end();
    if (!this.headerSent) this.sendHeader(this.host?.domain ?? this.env.defaultDomain);
    if (condition !== undefined) {
      this.log.debug({ condition, text }, 'closing stream with error');
      const error = streamErrorElement(condition, text);
      if (appCondition !== undefined) error.children.splice(1, 0, appCondition);
      this.transport.send(error);
    }
    this.transport.closeStream();
    this.transport.resume(); // if reading was paused, the peer's own close must still be seen
    // A peer that stopped answering pings may be on a dead network path: it may resume.
    if (condition === 'connection-timeout' && this.resumable) this.hibernate();
    else this.end();
  }

  // --- stream header and features -------------------------------------------------------

  private onHeader(name: string, attrs: Record<string, string>): void {
    if (this.phase !== 'header') return; // the transport reports headers only after a (re)start
    const prefix = name.includes(':') ? name.slice(0, name.indexOf(':')) : '';
    const domain = tryParseJid(attrs.to)?.domain;
    const host = domain === undefined ? undefined : this.env.hosts.get(domain);
    this.sendHeader(host?.domain ?? this.env.defaultDomain);
    if (name.slice(prefix.length ? prefix.length + 1 : 0) !== 'stream' || attrs[prefix ? `xmlns:${prefix}` : 'xmlns'] !== NS_STREAM) {
      return this.close('invalid-namespace', 'the stream element must be in http://etherx.jabber.org/streams');
    }
    if ((attrs.xmlns ?? '') !== NS_CLIENT) return this.close('invalid-namespace', 'the default namespace must be jabber:client');
    // RFC 6120 §4.7.5: major version 1, any minor version (answered with 1.0); none means 0.9.
    if (attrs.version === undefined || !SUPPORTED_VERSION.test(attrs.version)) return this.close('unsupported-version', 'XMPP 1.0 streams only');
    if (host === undefined) return this.close('host-unknown', `this server does not serve '${attrs.to ?? ''}'`);
    // The authenticated identity is bound to the domain it was proven for (CVE-2018-10847).
    if (this.host !== undefined && this.host !== host) return this.close('host-unknown', 'the stream domain cannot change');
    this.host = host;
    this.phase = 'negotiating';
    this.transport.send(this.features(host));
  }

  private sendHeader(domain: string): void {
    this.transport.openStream({
      from: domain, id: randomString(12, 'base64url'), version: '1.0',
      'xml:lang': 'en', xmlns: NS_CLIENT, 'xmlns:stream': NS_STREAM,
    });
    this.headerSent = true;
  }

  private features(host: Host): XmlElement {
    const features = el('stream:features');
    const { transport, env } = this;
    if (this.username !== undefined) {
      features.append(el('bind', { xmlns: NS_BIND }), el('session', { xmlns: NS_SESSION }, el('optional')));
      if (env.streamManagement.enabled) features.append(el('sm', { xmlns: NS_SM }));
      return features.append(...host.streamFeaturesFor(true));
    }
    if (transport.canStartTls) {
      features.append(el('starttls', { xmlns: NS_TLS }, env.tlsRequired ? el('required') : undefined));
      if (env.tlsRequired) return features;
    }
    const bindings = transport.channelBindings();
    const mechanisms = offeredMechanisms(env.saslPolicy, transport.secure, bindings.length > 0);
    features.append(el('mechanisms', { xmlns: NS_SASL }, ...mechanisms.map((m) => el('mechanism', {}, m))));
    if (bindings.length > 0) {
      features.append(el('sasl-channel-binding', { xmlns: 'urn:xmpp:sasl-cb:0' }, ...bindings.map((b) => el('channel-binding', { type: b.type }))));
    }
    return features.append(...host.streamFeaturesFor(false));
  }

  // --- element processing, in arrival order (see InputSequencer) ------------------------

  private sequenced(): SequencedStream {
    const stream = this;
    return {
      run: (work) => (typeof work === 'function' ? work() : this.handle(work)),
      pipelinable: (work): work is XmlElement =>
        typeof work !== 'function' && work.name === 'message' && this.live && (work.attrs.xmlns ?? NS_CLIENT) === NS_CLIENT,
      runMessage: (message, gate) => {
        this.sm?.countInbound();
        return this.handleStanza(message, gate);
      },
      failed: (err) => this.internalError(err),
      get closed() {
        return stream.phase === 'closed';
      },
      pauseReading: () => this.transport.pause(),
      resumeReading: () => this.transport.resume(),
    };
  }

  private internalError(err: unknown): void {
    this.log.error({ err }, 'stream handler failed');
    this.close('internal-server-error');
  }

  private handle(element: XmlElement): void | Promise<void> {
    const ns = element.attrs.xmlns ?? NS_CLIENT;
    const isStanza = ns === NS_CLIENT && (element.name === 'message' || element.name === 'presence' || element.name === 'iq');
    // While hibernating, what the lost connection delivered before it died is still handled.
    if (this.live) {
      if (isStanza) {
        this.sm?.countInbound();
        return this.handleStanza(element);
      }
      if (ns === NS_SM) return this.handleSm(element);
      const nonza = this.host?.nonzaHandler(element.attrs.xmlns);
      if (nonza !== undefined) return nonza(element, this);
      return this.close('unsupported-stanza-type', `<${element.name}/> is not handled here`);
    }
    if (this.phase !== 'negotiating' || this.host === undefined) return this.close('not-authorized');
    if (ns === NS_TLS && element.name === 'starttls') return this.startTls();
    if (this.env.tlsRequired && !this.transport.secure) {
      return this.close(isStanza ? 'not-authorized' : 'policy-violation', 'STARTTLS is required on this server');
    }
    if (ns === NS_SASL && this.username === undefined) return this.handleSasl(element, this.host);
    if (ns === NS_SM && this.username !== undefined) return this.handleSm(element);
    if (isStanza && element.name === 'iq') {
      if (this.username !== undefined) return this.handleBind(element, this.host);
      const handler = this.host.preAuthHandler(element.firstElement()?.attrs.xmlns);
      if (handler !== undefined) return this.preAuth(handler, element);
    }
    return this.close(isStanza ? 'not-authorized' : 'unsupported-stanza-type', 'authenticate and bind a resource first');
  }

  private async startTls(): Promise<void> {
    if (!this.transport.canStartTls) return this.close('policy-violation', 'TLS is already active or not available');
    // TLS comes before SASL (RFC 6120 §5.3.1): not once authentication has begun.
    if (this.sasl !== undefined || this.username !== undefined) return this.close('policy-violation', 'STARTTLS must come before authentication');
    this.input.takeQueued(); // anything pipelined after <starttls/> arrived in cleartext
    this.transport.send(el('proceed', { xmlns: NS_TLS }));
    try {
      await this.transport.startTls();
    } catch {
      this.end();
      return;
    }
    if (this.phase === 'closed') return;
    this.restartStream();
  }

  /** The stream restarts (RFC 6120 §4.3.3): the peer sends a new header and gets a new one. */
  private restartStream(): void {
    this.phase = 'header';
    this.headerSent = false;
  }

  private async handleSasl(element: XmlElement, host: Host): Promise<void> {
    this.sasl ??= new SaslNegotiator({
      policy: this.env.saslPolicy,
      limits: this.env.saslLimits,
      domain: host.domain,
      remoteAddress: this.transport.remoteAddress,
      secure: this.transport.secure,
      channelBindings: this.transport.channelBindings(),
      getCredentials: (username) => this.env.storage.users.getCredentials({ username, domain: host.domain }),
      send: (e) => this.transport.send(e),
    });
    const progress = await this.sasl.handle(element);
    if (progress.state === 'exhausted') return this.close('not-authorized', 'too many failed authentication attempts');
    if (progress.state === 'authenticated') {
      this.username = progress.username;
      this.sasl = undefined;
      this.restartStream();
      this.transport.restart();
      this.log.info({ user: `${progress.username}@${host.domain}` }, 'authenticated');
    }
  }

  private async preAuth(handler: NonNullable<ReturnType<Host['preAuthHandler']>>, element: XmlElement): Promise<void> {
    const handled = await handler(element, {
      remoteAddress: this.transport.remoteAddress,
      secure: this.transport.secure,
      send: (e) => this.transport.send(e),
    });
    if (!handled) this.transport.send(errorReply(element, new StanzaError('service-unavailable')));
  }

  private handleBind(iq: XmlElement, host: Host): void {
    const payload = iq.firstElement();
    if (iq.attrs.type === 'set' && payload?.name === 'bind' && payload.attrs.xmlns === NS_BIND) {
      const outcome = bindResource(payload, this.username!, host.domain);
      if (outcome instanceof StanzaError) return this.transport.send(errorReply(iq, outcome));
      this.boundJid = outcome;
      this.phase = 'bound';
      this.startIdleWatch();
      this.transport.send(el('iq', { type: 'result', id: iq.attrs.id }, el('bind', { xmlns: NS_BIND }, el('jid', {}, outcome.full))));
      this.env.sessionOpened(this);
      return;
    }
    this.transport.send(errorReply(iq, new StanzaError('not-authorized', 'bind a resource first')));
  }

  // --- XEP-0198 stream management -------------------------------------------------------

  private handleSm(element: XmlElement): void {
    switch (element.name) {
      case 'enable': return this.enableSm(element);
      case 'resume': return this.resumeSm(element);
      case 'r':
        if (this.sm === undefined) return this.close('unsupported-stanza-type', 'stream management is not enabled on this stream');
        // A request from a connection since lost or replaced: <resumed/> will carry the count.
        if (this.phase === 'bound' && !this.resuming) this.transport.send(el('a', { xmlns: NS_SM, h: String(this.sm.handled) }));
        return;
      case 'a': return this.onAck(element);
      default: return this.close('unsupported-stanza-type', `<${element.name}/> is not a stream management element`);
    }
  }

  private get resumable(): boolean {
    return this.sm?.id !== undefined;
  }

  /** §3: after binding, once per session. */
  private enableSm(element: XmlElement): void {
    const settings = this.env.streamManagement;
    if (!settings.enabled) return this.transport.send(failedElement('feature-not-implemented'));
    if (this.phase !== 'bound') return this.transport.send(failedElement('unexpected-request', undefined, 'bind a resource first'));
    if (this.sm !== undefined) return this.transport.send(failedElement('unexpected-request', undefined, 'stream management is already enabled'));
    const resume = element.attrs.resume === 'true' || element.attrs.resume === '1';
    // The client may ask for a shorter resumption window than the server's, not a longer one.
    const asked = Number(element.attrs.max);
    const timeoutMs = Number.isInteger(asked) && asked > 0 ? Math.min(asked * 1000, settings.resumeTimeoutMs) : settings.resumeTimeoutMs;
    const id = resume ? this.env.resumable.newId() : undefined;
    // Timers stop whenever the stream stops being bound (hibernate, takeover, end).
    this.sm = new SessionSm(id, timeoutMs, settings, () => this.transport.send(ACK_REQUEST));
    if (id === undefined) {
      this.transport.send(el('enabled', { xmlns: NS_SM }));
      return;
    }
    this.env.resumable.add(id, this.jid.bare, this);
    this.transport.send(el('enabled', { xmlns: NS_SM, id, resume: 'true', max: String(Math.max(1, Math.round(timeoutMs / 1000))) }));
  }

  private onAck(element: XmlElement): void {
    const sm = this.sm;
    if (sm === undefined) return this.close('unsupported-stanza-type', 'stream management is not enabled on this stream');
    const h = parseH(element.attrs.h);
    if (h === undefined) return this.close('invalid-xml', "'h' must be an unsignedInt");
    if (!sm.acknowledge(h)) return this.tooHigh(h, sm);
  }

  private tooHigh(h: number, sm: SessionSm): void {
    this.closeWith('undefined-condition', `you acknowledged ${h} stanzas but were sent ${sm.unacked.sendCount}`, handledCountTooHigh(h, sm.unacked.sendCount));
  }

  /**
   * §5: an authenticated stream that has not bound a resource takes over the session it names,
   * if that belongs to the same account and is still resumable (hibernating, or still looking
   * connected: that older connection is then closed with <conflict/>).
   */
  private resumeSm(element: XmlElement): void {
    if (!this.env.streamManagement.enabled) return this.transport.send(failedElement('feature-not-implemented'));
    if (this.phase !== 'negotiating' || this.host === undefined || this.username === undefined) {
      return this.transport.send(failedElement('unexpected-request', undefined, 'a bound stream cannot resume another'));
    }
    const h = parseH(element.attrs.h);
    const previd = element.attrs.previd;
    if (h === undefined || previd === undefined) return this.transport.send(failedElement('bad-request', undefined, "'previd' and 'h' are required"));
    const found = this.env.resumable.lookup(previd, `${this.username}@${this.host.domain}`);
    if (found === undefined) return this.transport.send(failedElement('item-not-found'));
    if ('ended' in found) return this.transport.send(failedElement('item-not-found', found.ended, 'the session has ended'));
    const session = found.session;
    if (!session.sm!.unacked.canAck(h)) return this.tooHigh(h, session.sm!);
    // This stream's connection now belongs to the session; this object is done.
    const pipelined = this.input.takeQueued();
    this.phase = 'closed';
    this.closedReported = true;
    clearTimeout(this.authTimer);
    this.env.streamClosed(this);
    session.takeOver(this.transport, this.env, h, pipelined);
  }

  /** The transport of a stream that resumed this session replaces the lost (or stale) one. */
  private takeOver(transport: StreamTransport, env: StreamEnvironment, h: number, pipelined: Work[]): void {
    const stale = this.phase === 'bound' ? this.transport : undefined;
    clearTimeout(this.hibernation);
    this.hibernation = undefined;
    this.idleWatch?.stop();
    this.sm!.stopTimer();
    this.transport = transport;
    this.env = env;
    transport.bind(this.eventsOf(transport));
    this.phase = 'bound';
    this.resuming = true;
    this.headerSent = true;
    this.closedCleanly = false;
    if (stale !== undefined) {
      this.log.info('session resumed on a new connection: closing the old one');
      stale.send(streamErrorElement('conflict', 'the session was resumed on another connection'));
      stale.closeStream();
      stale.resume(); // reading may have been paused for this session: let it see the peer go
    }
    // <resumed/> reports what was handled, so it waits for what the old connection delivered.
    const takeover = ++this.takeovers;
    this.input.push(() => this.completeResume(h, takeover));
    for (const work of pipelined) this.input.push(work);
    this.input.resumeReadingIfShort();
  }

  private completeResume(h: number, takeover: number): void {
    // A connection that resumed and was lost before its turn came, replaced by a newer one
    // whose own <resumed/> (with the client's newer 'h') is queued behind this.
    if (takeover !== this.takeovers) return;
    const sm = this.sm!;
    this.resuming = false;
    sm.unacked.ack(h); // checked before the takeover; only an inconsistent client could fail it now
    // The new connection was lost (or the session ended) before its turn came: nothing to answer.
    if (this.phase !== 'bound') return;
    this.transport.send(el('resumed', { xmlns: NS_SM, h: String(sm.handled), previd: sm.id }));
    // Exactly the stanzas after the client's 'h', as they were first written.
    const retransmitted = sm.unacked.length;
    for (const entry of sm.unacked.pending()) this.transport.send(entry.xml);
    sm.forgetRequests();
    // XEP-0352 §5.2: a resumed stream starts active, so what client state indication held goes out.
    const filter = this.filter;
    this.filter = undefined;
    if (filter !== undefined) for (const stanza of filter.release()) this.deliver(stanza);
    if (this.phase !== 'bound') return; // delivering may have overflowed the queue
    if (sm.unacked.length > 0) sm.requestAck();
    this.startIdleWatch();
    this.log.info({ jid: this.jid.full, retransmitted }, 'session resumed');
  }

  /** The connection is lost but the session can be resumed: keep it, registered and queueing. */
  private hibernate(): void {
    const sm = this.sm!;
    this.phase = 'hibernating';
    this.resuming = false;
    this.idleWatch?.stop();
    sm.stopTimer();
    this.hibernation = setTimeout(() => {
      this.log.info({ jid: this.jid.full }, 'session not resumed in time: ending it');
      this.end();
    }, sm.resumeTimeoutMs);
    this.hibernation.unref();
    this.log.info({ jid: this.jid.full, unacked: sm.unacked.length }, 'connection lost: session waits to be resumed');
  }

  // --- a bound session ------------------------------------------------------------------

  private handleStanza(stanza: XmlElement, gate?: DeliveryGate): void | Promise<void> {
    const host = this.host!;
    const jid = this.jid;
    // The server always stamps the authenticated address (RFC 6120 §8.1.2.1).
    stanza.attrs.from = jid.full;
    const rawTo = stanza.attrs.to;
    const to = rawTo === undefined ? undefined : tryParseJid(rawTo);
    if (rawTo !== undefined && to === undefined) return this.send(errorReply(stanza, new StanzaError('jid-malformed')));
    if (to !== undefined) stanza.attrs.to = to.full;

    if (stanza.name === 'iq') {
      const type = stanza.attrs.type;
      // Answers to the server's own requests (pings) end here.
      if ((type === 'result' || type === 'error') && (to === undefined || to.full === jid.domain)) {
        this.idleWatch?.answered(stanza.attrs.id);
        return;
      }
      if (stanza.attrs.type === 'set' && stanza.firstElement()?.attrs.xmlns === NS_SESSION && (to === undefined || to.full === jid.domain)) {
        return this.send(el('iq', { type: 'result', id: stanza.attrs.id }));
      }
      return this.after(host.hooks.fire('iq:outbound', { session: this, stanza }), () => this.env.router.dispatchIq(stanza, jid, to, this));
    }
    if (stanza.name === 'message') {
      if (to === undefined) stanza.attrs.to = jid.bare;
      return this.after(host.hooks.fire('message:outbound', { session: this, stanza }), () => this.env.router.route(stanza, gate));
    }
    return this.after(host.hooks.fire('presence:outbound', { session: this, stanza }), () => {
      if (to !== undefined) return this.env.router.route(stanza);
    });
  }

  /** Run `next` unless a hook handled the stanza; stays synchronous for synchronous hooks. */
  private after(handled: boolean | Promise<boolean>, next: () => void | Promise<void>): void | Promise<void> {
    if (handled === true) return;
    if (handled === false) return next();
    return handled.then((done) => (done ? undefined : next()));
  }

  /** Once bound, and again on each connection that resumes the session (see IdleWatch). */
  private startIdleWatch(): void {
    clearTimeout(this.authTimer);
    this.idleWatch?.stop();
    const stream = this;
    this.idleWatch = new IdleWatch(this.env.limits, {
      get lastActivity() {
        return stream.transport.lastActivity;
      },
      ping: (id) => this.send(el('iq', { type: 'get', id, from: this.jid.domain, to: this.jid.full }, el('ping', { xmlns: NS_PING }))),
      gone: () => this.close('connection-timeout', 'no answer to ping'),
    });
  }

  // --- the end --------------------------------------------------------------------------

  /** The peer closed its stream: what it sent before is handled first, then ours closes. */
  private onPeerClose(): void {
    this.closedCleanly = true;
    this.input.push(() => this.close());
  }

  /** The connection is gone without our closing it: a resumable session waits, others end. */
  private onTransportClosed(): void {
    if (this.phase === 'closed' || this.phase === 'hibernating') return;
    // Closed after the peer's </stream:stream> while what it sent is still being handled: the
    // close queued behind that ends the session; what arrives for it meanwhile is undeliverable.
    if (this.closedCleanly) {
      this.connectionGone = true;
      return;
    }
    if (this.phase === 'bound' && this.resumable && !this.closedCleanly) this.hibernate();
    else this.end();
  }

  /**
   * The stream and its session end. What the client never acknowledged, and what client state
   * indication still held, is handed over as undeliverable (messages to offline storage); then
   * the session is unregistered (contacts see it go unavailable).
   */
  private end(): void {
    this.phase = 'closed';
    clearTimeout(this.authTimer);
    this.idleWatch?.stop();
    clearTimeout(this.hibernation);
    this.sm?.stopTimer();
    if (this.closedReported) return;
    this.closedReported = true;
    if (this.boundJid !== undefined) {
      const undelivered: Undelivered[] = [];
      const sm = this.sm;
      if (sm !== undefined) {
        for (const { xml, queuedAt } of sm.unacked.take()) {
          const stanza = parseStoredElement(xml);
          if (stanza !== undefined) undelivered.push({ stanza, queuedAt });
          else this.log.error('unacknowledged stanza could not be read back');
        }
        if (sm.id !== undefined) this.env.resumable.end(sm.id, sm.handled);
      }
      const filter = this.filter;
      this.filter = undefined;
      if (filter !== undefined) {
        const now = Date.now();
        for (const stanza of filter.release()) undelivered.push({ stanza, queuedAt: now });
      }
      this.undeliverable(undelivered);
      this.env.sessionClosed(this, this.closedCleanly);
    }
    this.env.streamClosed(this);
  }

  /** Stanzas for a session that has ended (see handOver). */
  private undeliverable(items: Undelivered[]): void {
    if (items.length === 0 || this.boundJid === undefined || this.host === undefined) return;
    if (items.some((item) => item.stanza.name === 'message')) {
      this.log.info({ jid: this.boundJid.full, count: items.length }, 'undelivered stanzas handed over');
    }
    this.env.track(handOver(items, this.boundJid, this.host, this.env.router));
  }
}
