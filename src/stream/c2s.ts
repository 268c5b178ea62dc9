/**
 * One client-to-server stream (RFC 6120): the state machine from the first header through
 * STARTTLS, SASL and resource binding to a bound session that sends and receives stanzas.
 * Transport-agnostic: it sees only a StreamTransport.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { el, type XmlElement } from '../xml/element.ts';
import { StanzaError, errorReply, streamErrorElement, type StreamErrorCondition } from '../xml/errors.ts';
import type { Session } from '../modules/api.ts';
import type { UserRef } from '../storage/types.ts';
import type { Host } from '../router/host.ts';
import { Jid, tryParseJid } from '../router/jid.ts';
import type { StreamTransport } from '../transports/transport.ts';
import { offeredMechanisms } from '../auth/sasl.ts';
import { NS_SASL, SaslNegotiator } from './sasl-negotiator.ts';
import { bindResource, NS_BIND, NS_SESSION } from './bind.ts';
import type { StreamEnvironment } from './environment.ts';

export const NS_STREAM = 'http://etherx.jabber.org/streams';
export const NS_CLIENT = 'jabber:client';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_PING = 'urn:xmpp:ping';
/** Elements queued while an async step runs, before reading from the peer pauses. */
const QUEUE_PAUSE_AT = 64;
/** Major version 1 compared numerically (leading zeros allowed), any minor version. */
const SUPPORTED_VERSION = /^0*1\.[0-9]+$/;

type Phase = 'header' | 'negotiating' | 'bound' | 'closed';

export class C2SStream implements Session {
  readonly id = randomBytes(9).toString('base64url');
  private readonly transport: StreamTransport;
  private readonly env: StreamEnvironment;
  private readonly log: Logger;
  private phase: Phase = 'header';
  private headerSent = false;
  private host: Host | undefined;
  private sasl: SaslNegotiator | undefined;
  private username: string | undefined;
  private boundJid: Jid | undefined;
  private readonly queue: XmlElement[] = [];
  private busy = false;
  private outboundFilter: ((stanza: XmlElement) => boolean) | undefined;
  private closedCleanly = false;
  private pendingPing: string | undefined;
  /** performance.now() when the pending ping was sent. */
  private pingSentAt = 0;
  private closedReported = false;
  private timer: NodeJS.Timeout;

  presence: XmlElement | undefined = undefined;
  priority = 0;
  interested = false;
  rosterRequested = false;
  readonly data = new Map<string, unknown>();

  constructor(transport: StreamTransport, env: StreamEnvironment) {
    this.transport = transport;
    this.env = env;
    this.log = env.log.child({ stream: this.id });
    this.timer = setTimeout(() => this.close('connection-timeout', 'authentication took too long'), env.limits.authTimeoutMs);
    this.timer.unref();
    transport.bind({
      streamStart: (name, attrs) => this.onHeader(name, attrs),
      stanza: (element) => this.enqueue(element),
      streamEnd: () => this.onPeerClose(),
      xmlError: (condition, text) => this.close(condition as StreamErrorCondition, text),
      closed: () => this.onClosed(),
    });
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

  send(stanza: XmlElement): void {
    if (this.outboundFilter !== undefined && this.outboundFilter(stanza)) return;
    this.deliver(stanza);
  }

  deliver(stanza: XmlElement): void {
    if (this.phase !== 'closed') this.transport.send(stanza);
  }

  setOutboundFilter(filter: ((stanza: XmlElement) => boolean) | undefined): void {
    this.outboundFilter = filter;
  }

  close(condition?: StreamErrorCondition, text?: string): void {
    if (this.phase === 'closed') return;
    if (!this.headerSent) this.sendHeader(this.host?.domain ?? this.env.defaultDomain);
    if (condition !== undefined) {
      this.log.debug({ condition, text }, 'closing stream with error');
      this.transport.send(streamErrorElement(condition, text));
    }
    this.phase = 'closed';
    this.transport.closeStream();
    this.onClosed();
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
      from: domain, id: randomBytes(12).toString('base64url'), version: '1.0',
      'xml:lang': 'en', xmlns: NS_CLIENT, 'xmlns:stream': NS_STREAM,
    });
    this.headerSent = true;
  }

  private features(host: Host): XmlElement {
    const features = el('stream:features');
    const { transport, env } = this;
    if (this.username !== undefined) {
      return features.append(el('bind', { xmlns: NS_BIND }), el('session', { xmlns: NS_SESSION }, el('optional')), ...host.streamFeaturesFor(true));
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

  // --- element processing, strictly in arrival order ------------------------------------

  private enqueue(element: XmlElement): void {
    if (this.phase === 'closed') return;
    if (this.busy) {
      this.queue.push(element);
      if (this.queue.length === QUEUE_PAUSE_AT) this.transport.pause();
      return;
    }
    this.process(element);
  }

  private process(element: XmlElement): void {
    let result: void | Promise<void>;
    try {
      result = this.handle(element);
    } catch (err) {
      this.internalError(err);
      return;
    }
    if (result instanceof Promise) {
      this.busy = true;
      result.catch((err: unknown) => this.internalError(err)).finally(() => this.drain());
    }
  }

  private drain(): void {
    this.busy = false;
    while (!this.busy && this.queue.length > 0 && this.phase !== 'closed') this.process(this.queue.shift()!);
    if (!this.busy && this.phase !== 'closed') this.transport.resume();
  }

  private internalError(err: unknown): void {
    this.log.error({ err }, 'stream handler failed');
    this.close('internal-server-error');
  }

  private handle(element: XmlElement): void | Promise<void> {
    const ns = element.attrs.xmlns ?? NS_CLIENT;
    const isStanza = ns === NS_CLIENT && (element.name === 'message' || element.name === 'presence' || element.name === 'iq');
    if (this.phase === 'bound') {
      if (isStanza) return this.handleStanza(element);
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
    this.queue.length = 0; // anything pipelined after <starttls/> arrived in cleartext
    this.transport.send(el('proceed', { xmlns: NS_TLS }));
    try {
      await this.transport.startTls();
    } catch {
      this.onClosed();
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

  // --- a bound session ------------------------------------------------------------------

  private handleStanza(stanza: XmlElement): void | Promise<void> {
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
        if (stanza.attrs.id === this.pendingPing) this.pendingPing = undefined;
        return;
      }
      if (stanza.attrs.type === 'set' && stanza.firstElement()?.attrs.xmlns === NS_SESSION && (to === undefined || to.full === jid.domain)) {
        return this.send(el('iq', { type: 'result', id: stanza.attrs.id }));
      }
      return this.after(host.hooks.fire('iq:outbound', { session: this, stanza }), () => this.env.router.dispatchIq(stanza, jid, to, this));
    }
    if (stanza.name === 'message') {
      if (to === undefined) stanza.attrs.to = jid.bare;
      return this.after(host.hooks.fire('message:outbound', { session: this, stanza }), () => this.env.router.route(stanza));
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

  /** XEP-0199 server pings on idle connections; a peer that does not answer is gone. */
  private startIdleWatch(): void {
    const { idleTimeoutMs, pingTimeoutMs } = this.env.limits;
    clearTimeout(this.timer);
    this.timer = setInterval(() => {
      const now = performance.now();
      const lastActivity = this.transport.lastActivity;
      if (this.pendingPing !== undefined) {
        // Anything at all from the peer since the ping shows it is alive.
        if (lastActivity > this.pingSentAt) this.pendingPing = undefined;
        else if (now - this.pingSentAt >= pingTimeoutMs) this.close('connection-timeout', 'no answer to ping');
      } else if (now - lastActivity >= idleTimeoutMs) {
        this.pendingPing = `ping-${randomBytes(6).toString('base64url')}`;
        this.pingSentAt = now;
        this.send(el('iq', { type: 'get', id: this.pendingPing, from: this.jid.domain, to: this.jid.full }, el('ping', { xmlns: NS_PING })));
      }
    }, Math.max(100, Math.min(idleTimeoutMs, pingTimeoutMs) / 2));
    this.timer.unref();
  }

  // --- the end --------------------------------------------------------------------------

  private onPeerClose(): void {
    this.closedCleanly = true;
    this.close();
  }

  private onClosed(): void {
    this.phase = 'closed';
    clearInterval(this.timer);
    if (this.closedReported) return;
    this.closedReported = true;
    if (this.boundJid !== undefined) this.env.sessionClosed(this, this.closedCleanly);
    this.env.streamClosed(this);
  }
}
