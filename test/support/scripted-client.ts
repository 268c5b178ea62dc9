/**
 * A raw XMPP client for protocol tests (in the spirit of Prosody's scansion): it sends any
 * text or bytes, and expects received top-level elements one at a time, in order, by subset
 * matching (see xml-match.ts). SASL (PLAIN, SCRAM with and without channel binding) and
 * resource binding are done here, independently of src/, so that they really check the server.
 * Every failed expectation throws with the client's transcript.
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { escapeXML, escapeXMLText, type Element } from 'ltx';
import { StreamReader } from './stream-reader.ts';
import { Transcript, describeBytes } from './transcript.ts';
import { NS_STREAM, mismatch, parsePattern } from './xml-match.ts';
import { ScramClient, channelBindingData, plainMessage, type ChannelBindingType, type SaslMechanism, type ScramOptions } from './sasl-client.ts';

export const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
export const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
export const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
export const NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams';

export type ClientTls = 'starttls' | 'direct' | 'none';

export interface ScriptedConnectOptions {
  port: number;
  /** The stream's `to` and the TLS server name. */
  domain: string;
  /** 'starttls' negotiates TLS before returning; 'direct' is XEP-0368 TLS from the first byte. */
  tls: ClientTls;
  host?: string;
  /** Shown in failure messages. */
  name?: string;
  /** Trust anchors: when given the server certificate is verified, otherwise any is accepted. */
  ca?: string | string[];
  /** False: return right after the TCP/TLS connection, before any XMPP (for raw-header tests). */
  openStream?: boolean;
  /** Default timeout of every expectation, in ms (default 5000). */
  timeout?: number;
}

export interface ExpectOptions {
  timeout?: number;
  /** Discard non-matching elements until one matches, instead of failing on the first one. */
  skip?: boolean;
}

export interface LoginOptions extends Pick<ScramOptions, 'authzid' | 'gs2Flag' | 'nonce' | 'tamper'> {
  /** Default SCRAM-SHA-256. */
  mechanism?: SaslMechanism;
  /** For -PLUS mechanisms (default tls-exporter). */
  channelBinding?: ChannelBindingType;
}

export type SaslOutcome =
  | { ok: true }
  | { ok: false; condition: string; text: string | undefined; element: Element };

export class ScriptedClient {
  readonly name: string;
  readonly domain: string;
  /** The full JID after bind(). */
  jid: string | undefined;
  /** Attributes of the last stream header received. */
  streamAttributes: Record<string, string> | undefined;
  readonly transcript: Transcript;
  private readonly options: ScriptedConnectOptions;
  private socket!: net.Socket;
  private reader!: StreamReader;
  private readonly queue: Element[] = [];
  private lastFeatures: Element | undefined;
  private peerEnded = false;
  private socketClosed = false;
  private sentClose = false;
  private readonly waiters = new Set<() => void>();
  private ids = 0;
  private detach: () => void = () => undefined;

  private constructor(options: ScriptedConnectOptions) {
    this.options = options;
    this.name = options.name ?? `client:${options.port}`;
    this.domain = options.domain;
    this.transcript = new Transcript(this.name);
    this.reader = this.newReader();
  }

  static async connect(options: ScriptedConnectOptions): Promise<ScriptedClient> {
    const client = new ScriptedClient(options);
    const host = options.host ?? '127.0.0.1';
    if (options.tls === 'direct') {
      client.attach(await client.tlsConnect({ host, port: options.port, ALPNProtocols: ['xmpp-client'] }));
    } else {
      const socket = net.connect({ host, port: options.port });
      await once(socket, 'connect');
      client.attach(socket);
    }
    client.transcript.add('note', `connected to ${host}:${options.port} (${options.tls})`);
    if (options.openStream === false) return client;
    await client.openStream();
    if (options.tls === 'starttls') await client.startTls();
    return client;
  }

  // --- connection ---------------------------------------------------------------------

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  get closed(): boolean {
    return this.socketClosed;
  }

  /** RFC 5705 exporter on the TLS connection (e.g. for tls-exporter channel binding checks). */
  exportKeyingMaterial(length: number, label: string, context?: Buffer): Buffer {
    const socket = this.tlsSocket;
    if (socket === undefined) throw new Error(`[${this.name}] not a TLS connection`);
    // node accepts no context (distinct from an empty one in TLS 1.2), its types do not.
    return context === undefined ? socket.exportKeyingMaterial(length, label, undefined as unknown as Buffer) : socket.exportKeyingMaterial(length, label, context);
  }

  channelBindingData(type: ChannelBindingType): Buffer {
    const socket = this.tlsSocket;
    if (socket === undefined) throw new Error(`[${this.name}] not a TLS connection`);
    return channelBindingData(socket, type);
  }

  private async tlsConnect(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    const { ca, domain } = this.options;
    const socket = tls.connect({
      ...options,
      servername: net.isIP(domain) === 0 ? domain : undefined,
      ca,
      rejectUnauthorized: ca !== undefined,
    });
    await once(socket, 'secureConnect');
    this.transcript.add('note', `TLS established (${socket.getProtocol() ?? '?'}, ${socket.getCipher().name})`);
    return socket;
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    const onData = (chunk: Buffer) => this.reader.write(chunk);
    const onError = (err: Error) => this.transcript.add('note', `socket error: ${err.message}`);
    const onClose = () => {
      this.socketClosed = true;
      this.transcript.add('note', 'connection closed');
      this.notify();
    };
    socket.on('data', onData).on('error', onError).on('close', onClose);
    this.detach = () => {
      socket.off('data', onData).off('error', onError).off('close', onClose);
    };
  }

  private newReader(): StreamReader {
    return new StreamReader({
      header: (name, attrs) => {
        this.streamAttributes = attrs;
        this.transcript.add('recv', `<${name}${Object.entries(attrs).map(([k, v]) => ` ${k}='${escapeXML(v)}'`).join('')}>`);
        this.notify();
      },
      element: (element) => {
        this.transcript.add('recv', element.toString());
        if (element.getName() === 'features' && element.getNS() === NS_STREAM) this.lastFeatures = element;
        this.queue.push(element);
        this.notify();
      },
      end: () => {
        this.transcript.add('recv', '</stream:stream>');
        this.peerEnded = true;
        // Answer the close as RFC 6120 §4.4 asks, then let the server drop the connection.
        if (!this.sentClose) {
          this.sentClose = true;
          this.write('</stream:stream>');
          this.socket.end();
        }
        this.notify();
      },
      error: (err) => this.transcript.add('note', `XML parse problem: ${err.message}`),
    });
  }

  // --- sending ------------------------------------------------------------------------

  /** Send XML text as is (nothing is checked or escaped). */
  send(xml: string): void {
    this.write(xml);
  }

  /** Send arbitrary bytes, e.g. malformed UTF-8 or a partial element. */
  sendRaw(data: Buffer | string): void {
    this.write(data);
  }

  private write(data: Buffer | string): void {
    this.transcript.add('send', describeBytes(data));
    if (this.socket.destroyed || this.socket.writableEnded) {
      this.transcript.add('note', 'not sent: the connection is closed');
      return;
    }
    this.socket.write(data);
  }

  /** A fresh stanza id. */
  id(prefix = 'id'): string {
    return `${prefix}-${++this.ids}`;
  }

  // --- receiving ----------------------------------------------------------------------

  private notify(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves when `ready()` is true, or fails with `describe()` after the timeout. */
  private async waitUntil(ready: () => boolean, timeout: number, describe: () => string): Promise<void> {
    if (ready()) return;
    await new Promise<void>((resolve, reject) => {
      const wake = () => {
        if (!ready()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(this.failure(`timed out after ${timeout}ms ${describe()}`));
      }, timeout);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      this.waiters.add(wake);
    });
  }

  /** An Error carrying the transcript, for a failed expectation. */
  failure(message: string): Error {
    return new Error(`[${this.name}] ${message}\n${this.transcript.format()}`);
  }

  private get defaultTimeout(): number {
    return this.options.timeout ?? 5000;
  }

  /** Discard (and return) everything received but not yet expected. */
  clear(): Element[] {
    return this.queue.splice(0);
  }

  /** The next received top-level element, whatever it is. */
  async next(options: { timeout?: number } = {}): Promise<Element> {
    const timeout = options.timeout ?? this.defaultTimeout;
    await this.waitUntil(() => this.queue.length > 0 || this.peerEnded || this.socketClosed, timeout, () => 'waiting for an element');
    const element = this.queue.shift();
    if (element === undefined) throw this.failure(`the ${this.peerEnded ? 'stream' : 'connection'} closed while waiting for an element`);
    return element;
  }

  /**
   * The next received element, which must match `pattern` (strictly the next one, unless
   * `skip`: then non-matching ones are discarded). Returns the matching element.
   */
  async expect(pattern: string, options: ExpectOptions = {}): Promise<Element> {
    const expected = parsePattern(pattern);
    const timeout = options.timeout ?? this.defaultTimeout;
    const deadline = performance.now() + timeout;
    for (;;) {
      const remaining = Math.max(0, Math.round(deadline - performance.now()));
      await this.waitUntil(() => this.queue.length > 0 || this.peerEnded || this.socketClosed, remaining, () => `waiting for ${pattern}`);
      const element = this.queue.shift();
      if (element === undefined) {
        throw this.failure(`the ${this.peerEnded ? 'stream' : 'connection'} closed while waiting for ${pattern}`);
      }
      const reason = mismatch(expected, element);
      if (reason === undefined) return element;
      if (options.skip) {
        this.transcript.add('note', `skipped while waiting for ${pattern}`);
        continue;
      }
      throw this.failure(`expected ${pattern}\nbut received ${element.toString()}\n(${reason})`);
    }
  }

  /** Nothing at all may arrive (nor the connection close) for `ms` milliseconds. */
  async expectNothing(ms = 300): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.queue.length > 0) {
      throw this.failure(`expected nothing for ${ms}ms but received ${this.queue[0].toString()}`);
    }
    if (this.peerEnded || this.socketClosed) throw this.failure(`expected nothing for ${ms}ms but the connection closed`);
  }

  /** A <stream:error/> with this condition, then the end of the stream and the connection. */
  async expectStreamError(condition: string, options: ExpectOptions = {}): Promise<Element> {
    const error = await this.expect(`<stream:error><${condition} xmlns='${NS_STREAM_ERRORS}'/></stream:error>`, options);
    await this.expectClosed(options);
    return error;
  }

  /**
   * The connection closes (with `</stream:stream>` first unless streamEnd is false), and no
   * element arrives before (unless skip).
   */
  async expectClosed(options: ExpectOptions & { streamEnd?: boolean } = {}): Promise<void> {
    const timeout = options.timeout ?? this.defaultTimeout;
    await this.waitUntil(() => this.socketClosed || (!options.skip && this.queue.length > 0), timeout, () => 'waiting for the connection to close');
    if (!options.skip && this.queue.length > 0) throw this.failure(`expected the stream to close but received ${this.queue[0].toString()}`);
    if (options.streamEnd !== false && !this.peerEnded) throw this.failure('the connection closed without </stream:stream>');
  }

  // --- stream negotiation -------------------------------------------------------------

  /** The last <stream:features/> received. */
  features(): Element {
    if (this.lastFeatures === undefined) throw this.failure('no <stream:features/> received yet');
    return this.lastFeatures;
  }

  /** SASL mechanisms in the last features. */
  mechanisms(): string[] {
    return this.features().getChild('mechanisms', NS_SASL)?.getChildren('mechanism').map((m) => m.getText()) ?? [];
  }

  /** Send a stream header (attributes overridable, `undefined` omits one) and await the features. */
  async openStream(attributes: Record<string, string | undefined> = {}): Promise<Element> {
    const attrs: Record<string, string | undefined> = {
      to: this.domain, version: '1.0', 'xml:lang': 'en', xmlns: 'jabber:client', 'xmlns:stream': NS_STREAM, ...attributes,
    };
    this.reader = this.newReader();
    this.streamAttributes = undefined;
    this.peerEnded = false;
    const rendered = Object.entries(attrs).filter(([, v]) => v !== undefined).map(([k, v]) => ` ${k}='${escapeXML(v!)}'`).join('');
    this.write(`<?xml version='1.0'?><stream:stream${rendered}>`);
    await this.waitUntil(() => this.streamAttributes !== undefined || this.socketClosed, this.defaultTimeout, () => 'waiting for the stream header');
    if (this.streamAttributes === undefined) throw this.failure('the connection closed before the stream header');
    return this.expect('<stream:features/>');
  }

  /** STARTTLS (RFC 6120 §5) and the stream restart over TLS. */
  async startTls(): Promise<Element> {
    this.send(`<starttls xmlns='${NS_TLS}'/>`);
    await this.expect(`<proceed xmlns='${NS_TLS}'/>`);
    // The TLS socket takes over: the cleartext one must no longer feed the old reader.
    this.detach();
    this.attach(await this.tlsConnect({ socket: this.socket }));
    return this.openStream();
  }

  /** One SASL exchange; reports failure instead of throwing (for negative tests). */
  async authenticate(username: string, password: string, options: LoginOptions = {}): Promise<SaslOutcome> {
    const mechanism = options.mechanism ?? 'SCRAM-SHA-256';
    const scram = mechanism === 'PLAIN' ? undefined : new ScramClient({
      ...options, mechanism, username, password, tlsSocket: this.tlsSocket,
    });
    const initial = scram === undefined ? plainMessage(username, password, options.authzid) : Buffer.from(scram.first(), 'utf8');
    this.send(`<auth xmlns='${NS_SASL}' mechanism='${escapeXML(mechanism)}'>${initial.toString('base64') || '='}</auth>`);
    let step = 0;
    let serverVerified = scram === undefined;
    for (;;) {
      const element = await this.next();
      if (element.getNS() !== NS_SASL) throw this.failure(`unexpected element during SASL: ${element.toString()}`);
      const data = Buffer.from(element.getText().trim(), 'base64').toString('utf8');
      try {
        if (element.getName() === 'challenge' && scram !== undefined) {
          let response = '';
          if (step++ === 0) {
            response = scram.final(data);
          } else {
            // Some servers send the server-final-message as a challenge, then an empty success.
            scram.verify(data);
            serverVerified = true;
          }
          this.send(`<response xmlns='${NS_SASL}'>${Buffer.from(response, 'utf8').toString('base64')}</response>`);
        } else if (element.getName() === 'success') {
          if (!serverVerified) {
            scram!.verify(data);
            serverVerified = true;
          }
          return { ok: true };
        } else if (element.getName() === 'failure') {
          const condition = element.getChildElements().find((child) => child.getName() !== 'text')?.getName() ?? '(none)';
          return { ok: false, condition, text: element.getChildText('text') ?? undefined, element };
        } else {
          throw new Error(`unexpected SASL element <${element.name}/>`);
        }
      } catch (err) {
        throw this.failure(`SASL ${mechanism}: ${(err as Error).message}`);
      }
    }
  }

  /** Authenticate (throws on failure) and restart the stream. */
  async login(username: string, password: string, options: LoginOptions = {}): Promise<Element> {
    const outcome = await this.authenticate(username, password, options);
    if (!outcome.ok) throw this.failure(`SASL failure <${outcome.condition}/>${outcome.text ? `: ${outcome.text}` : ''}`);
    return this.openStream();
  }

  /** Resource binding (RFC 6120 §7); returns the full JID. */
  async bind(resource?: string): Promise<string> {
    const id = this.id('bind');
    const child = resource === undefined ? '' : `<resource>${escapeXMLText(resource)}</resource>`;
    this.send(`<iq type='set' id='${id}'><bind xmlns='${NS_BIND}'>${child}</bind></iq>`);
    const result = await this.expect(`<iq type='result' id='${id}'><bind xmlns='${NS_BIND}'><jid/></bind></iq>`);
    this.jid = result.getChild('bind', NS_BIND)!.getChildText('jid')!;
    this.transcript.add('note', `bound as ${this.jid}`);
    return this.jid;
  }

  /** Send an IQ (which must carry an id) and return its response (result or error). */
  async iq(xml: string, options: ExpectOptions = {}): Promise<Element> {
    const id = parsePattern(xml).attrs.id;
    if (id === undefined) throw new Error('iq() needs an id attribute');
    this.send(xml);
    return this.expect(`<iq id='${escapeXML(id)}'/>`, options);
  }

  // --- the end ------------------------------------------------------------------------

  /** Close the stream politely and wait (briefly) for the server to close the connection. */
  async close(timeout = 2000): Promise<void> {
    if (this.socketClosed) return;
    if (!this.sentClose) {
      this.sentClose = true;
      this.write('</stream:stream>');
    }
    await this.waitUntil(() => this.socketClosed, timeout, () => '').catch(() => undefined);
    this.destroy();
  }

  /** Drop the connection without closing the stream. */
  destroy(): void {
    this.socket.destroy();
  }
}
