/**
 * A minimal, fast XMPP client for load generation: raw TCP with optional STARTTLS, SASL
 * PLAIN or SCRAM (SHA-256 preferred, SHA-1 otherwise), XEP-0077 registration, resource
 * binding and the legacy session when a server still requires it, and XEP-0198 stream
 * management (acknowledgements only: it answers the server's <r/> with the count of stanzas
 * received). Elements travel as raw strings (see stream.ts); writes made in one tick leave in
 * one syscall.
 *
 * Certificates are not verified: the generator only ever talks to servers on loopback that
 * it started or was pointed at, and verification cost is not what is being measured.
 */
import net from 'node:net';
import tls from 'node:tls';
import { StreamSplitter, childText, elementName, escapeXml, rootAttr } from './stream.ts';
import { ScramClient, isScram, plainResponse, type ScramMechanism } from './scram.ts';

export type AuthChoice = 'PLAIN' | 'SCRAM';

/** A failure with a short machine-readable reason (used to count failures by kind). */
export class ClientError extends Error {
  constructor(readonly reason: string, detail?: string) {
    super(detail === undefined ? reason : `${reason}: ${detail}`);
  }
}

export interface ConnectOptions {
  host: string;
  port: number;
  domain: string;
  /** Per-step timeout (ms). */
  timeoutMs?: number;
}

export interface LoginOptions extends ConnectOptions {
  username: string;
  password: string;
  /** Upgrade with STARTTLS before authenticating. */
  starttls: boolean;
  auth: AuthChoice;
  resource?: string;
  /** Send initial presence after binding. */
  presence?: boolean;
  /** Enable XEP-0198 stream management (with resume='true', as mobile clients do) after binding, before presence. */
  sm?: boolean;
}

/** XEP-0198 counters of one stream, from <enabled/> on. */
export interface SmCounters {
  /** Stanzas received: the 'h' this client acknowledges. */
  received: number;
  /** Stanzas sent (through sendStanza): what the server's 'h' must reach. */
  sent: number;
  /** <r/> received from the server (each answered with one <a/>). */
  requests: number;
}

interface Pending {
  resolve(element: { raw: string; name: string }): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const NS_STREAM = 'http://etherx.jabber.org/streams';
export const NS_SM = 'urn:xmpp:sm:3';

/** 'h' is an xs:unsignedInt: it counts modulo 2^32 (XEP-0198 §4). */
function nextH(h: number): number {
  return h === 0xffffffff ? 0 : h + 1;
}

export class XmppConnection {
  socket: net.Socket;
  readonly domain: string;
  private splitter: StreamSplitter;
  private readonly queue: { raw: string; name: string }[] = [];
  private waiter: Pending | undefined;
  private out = '';
  private flushScheduled = false;
  private closedError: Error | undefined;
  private readonly timeoutMs: number;
  /** After login: every incoming top-level element goes here instead of the queue. */
  onElement: ((raw: string, name: string) => void) | undefined;
  onClose: ((err?: Error) => void) | undefined;
  /** The full JID after bind. */
  jid = '';
  mechanism = '';
  secure = false;
  bytesIn = 0;
  bytesOut = 0;
  /** Stream management counters once enabled. */
  sm: SmCounters | undefined;
  /** <enable/> sent, <enabled/> not yet seen. */
  private smEnabling = false;
  /** Waiting for the server's <a/> (smSync). */
  private smWaiter: { resolve(h: number): void; reject(err: Error): void } | undefined;

  private constructor(socket: net.Socket, domain: string, timeoutMs: number) {
    this.socket = socket;
    this.domain = domain;
    this.timeoutMs = timeoutMs;
    this.splitter = this.newSplitter();
    this.attach(socket);
  }

  static connect(options: ConnectOptions): Promise<XmppConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: options.host, port: options.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => { socket.destroy(); reject(new ClientError('connect-timeout')); }, options.timeoutMs ?? 30_000);
      socket.once('error', (err) => { clearTimeout(timer); reject(new ClientError('connect', err.message)); });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new XmppConnection(socket, options.domain, options.timeoutMs ?? 30_000));
      });
    });
  }

  private newSplitter(): StreamSplitter {
    return new StreamSplitter({
      header: () => undefined,
      element: (raw, name) => this.deliver(raw, name),
      end: () => this.fail(new ClientError('stream-closed-by-server')),
    });
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      this.splitter.write(chunk);
    });
    socket.on('error', (err) => this.fail(new ClientError('socket', err.message)));
    socket.on('close', () => this.fail(new ClientError('closed')));
  }

  private deliver(raw: string, name: string): void {
    if (name === 'stream:error' || (name.endsWith(':error') && raw.includes(NS_STREAM))) {
      const condition = /<([a-z-]+)[^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/.exec(raw)?.[1] ?? 'unknown';
      this.fail(new ClientError(`stream-error:${condition}`));
      return;
    }
    const sm = this.sm;
    if (sm !== undefined) {
      // XEP-0198 §4: every stanza counts, nonzas never.
      if (name === 'message' || name === 'presence' || name === 'iq') {
        sm.received = nextH(sm.received);
      } else if (name === 'r' && raw.includes(NS_SM)) {
        sm.requests++;
        this.send(`<a xmlns='${NS_SM}' h='${sm.received}'/>`);
        return;
      } else if (name === 'a' && raw.includes(NS_SM)) {
        const waiter = this.smWaiter;
        this.smWaiter = undefined;
        waiter?.resolve(Number(rootAttr(raw, 'h')));
        return;
      }
    } else if (this.smEnabling && name === 'enabled' && raw.includes(NS_SM)) {
      // Counting starts here, not when the awaiting code resumes: stanzas that follow in the
      // same read are delivered before that.
      this.smEnabling = false;
      this.sm = { received: 0, sent: 0, requests: 0 };
    }
    if (this.onElement !== undefined) {
      this.onElement(raw, name);
      return;
    }
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.resolve({ raw, name });
    } else {
      this.queue.push({ raw, name });
    }
  }

  private fail(err: Error): void {
    if (this.closedError !== undefined) return;
    this.closedError = err;
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
    const smWaiter = this.smWaiter;
    this.smWaiter = undefined;
    smWaiter?.reject(err);
    this.onClose?.(err);
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** The next top-level element during negotiation. */
  next(): Promise<{ raw: string; name: string }> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new ClientError('timeout'));
      }, this.timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /** Buffered write: everything sent in one tick goes out in one write. */
  send(data: string): void {
    this.out += data;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  /** send() for one stanza (message, presence, iq): counted for stream management. */
  sendStanza(data: string): void {
    if (this.sm !== undefined) this.sm.sent = nextH(this.sm.sent);
    this.send(data);
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.socket.destroyed) return;
    const data = this.out;
    this.out = '';
    this.bytesOut += data.length;
    this.socket.write(data);
  }

  /** Opens (or restarts) the stream and returns the raw `<stream:features>`. */
  async open(): Promise<string> {
    this.splitter = this.newSplitter();
    this.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' to='${escapeXml(this.domain)}' version='1.0'>`);
    const features = await this.next();
    if (features.name !== 'stream:features') throw new ClientError('protocol', `expected features, got <${features.name}>`);
    return features.raw;
  }

  async startTls(): Promise<string> {
    this.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    const answer = await this.next();
    if (elementName(answer.raw) !== 'proceed') throw new ClientError('starttls-refused');
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('error');
    plain.removeAllListeners('close');
    const secure = tls.connect({ socket: plain, servername: net.isIP(this.domain) ? undefined : this.domain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ClientError('tls-timeout')), this.timeoutMs);
      secure.once('secureConnect', () => { clearTimeout(timer); resolve(); });
      secure.once('error', (err) => { clearTimeout(timer); reject(new ClientError('tls', err.message)); });
    });
    secure.removeAllListeners('error');
    this.socket = secure;
    this.secure = true;
    this.attach(secure);
    return this.open();
  }

  /** SASL; on success the stream is restarted and the new features returned. */
  async authenticate(features: string, username: string, password: string, choice: AuthChoice): Promise<string> {
    const offered = [...features.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1]);
    let mechanism: string | undefined;
    if (choice === 'PLAIN') mechanism = offered.includes('PLAIN') ? 'PLAIN' : undefined;
    else mechanism = (['SCRAM-SHA-256', 'SCRAM-SHA-1', 'SCRAM-SHA-512'] as const).find((m) => offered.includes(m));
    if (mechanism === undefined) throw new ClientError('no-mechanism', `${choice} not among [${offered.join(' ')}]`);
    this.mechanism = mechanism;
    const ns = "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'";
    if (mechanism === 'PLAIN') {
      this.send(`<auth ${ns} mechanism='PLAIN'>${plainResponse(username, password)}</auth>`);
      await this.saslOutcome();
    } else if (isScram(mechanism)) {
      const scram = new ScramClient(mechanism as ScramMechanism, username, password);
      this.send(`<auth ${ns} mechanism='${mechanism}'>${Buffer.from(scram.first()).toString('base64')}</auth>`);
      const challenge = await this.next();
      if (elementName(challenge.raw) !== 'challenge') throw saslFailure(challenge.raw);
      const serverFirst = Buffer.from(childTextOfRoot(challenge.raw), 'base64').toString('utf8');
      this.send(`<response ${ns}>${Buffer.from(scram.final(serverFirst)).toString('base64')}</response>`);
      const data = await this.saslOutcome();
      if (!scram.verify(data)) throw new ClientError('bad-server-signature');
    }
    return this.open();
  }

  /** Waits for <success/> (returns its decoded data) or throws on <failure/>. */
  private async saslOutcome(): Promise<string> {
    const outcome = await this.next();
    const name = elementName(outcome.raw);
    if (name === 'success') return Buffer.from(childTextOfRoot(outcome.raw), 'base64').toString('utf8');
    throw saslFailure(outcome.raw);
  }

  async bind(features: string, resource: string): Promise<string> {
    if (!features.includes('urn:ietf:params:xml:ns:xmpp-bind')) throw new ClientError('protocol', 'no bind feature');
    this.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${escapeXml(resource)}</resource></bind></iq>`);
    const result = await this.next();
    if (rootAttr(result.raw, 'type') !== 'result') throw new ClientError('bind-failed', result.raw.slice(0, 200));
    const jid = childText(result.raw, 'jid');
    if (jid === undefined) throw new ClientError('bind-failed', 'no jid');
    this.jid = jid;
    // RFC 3921 session: only when the server still requires it (no <optional/>).
    const session = /<session[^>]*urn:ietf:params:xml:ns:xmpp-session[^>]*(\/>|>([\s\S]*?)<\/session>)/.exec(features);
    if (session !== null && !(session[2] ?? '').includes('optional')) {
      this.send(`<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
      const answer = await this.next();
      if (rootAttr(answer.raw, 'type') !== 'result') throw new ClientError('session-failed');
    }
    return jid;
  }

  /** XEP-0198 §3: enables stream management (after bind); throws when the server refuses. */
  async enableSm(resume = true): Promise<void> {
    this.smEnabling = true;
    this.send(`<enable xmlns='${NS_SM}'${resume ? " resume='true'" : ''}/>`);
    const answer = await this.next();
    if (this.sm === undefined) {
      this.smEnabling = false;
      throw new ClientError('sm-failed', answer.raw.slice(0, 200));
    }
  }

  /**
   * Acknowledges everything received so far and asks the server for its count (<r/>):
   * resolves with the server's 'h', which must equal `sm.sent`.
   */
  smSync(): Promise<number> {
    const sm = this.sm;
    if (sm === undefined) return Promise.reject(new ClientError('sm-not-enabled'));
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.smWaiter = undefined;
        reject(new ClientError('sm-ack-timeout'));
      }, this.timeoutMs);
      this.smWaiter = {
        resolve: (h) => { clearTimeout(timer); resolve(h); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      };
      this.send(`<a xmlns='${NS_SM}' h='${sm.received}'/><r xmlns='${NS_SM}'/>`);
    });
  }

  /** XEP-0077: true when created, false when the account already existed. */
  async register(features: string, username: string, password: string): Promise<boolean> {
    void features;
    this.send(
      `<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>${escapeXml(username)}</username>` +
        `<password>${escapeXml(password)}</password></query></iq>`,
    );
    const result = await this.next();
    const type = rootAttr(result.raw, 'type');
    if (type === 'result') return true;
    if (result.raw.includes('<conflict')) return false;
    const condition = /<([a-z-]+)[^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]/.exec(result.raw)?.[1] ?? 'unknown';
    throw new ClientError(`register:${condition}`);
  }

  /** Closes the stream politely and drops the socket shortly after. */
  close(): void {
    if (this.socket.destroyed) return;
    this.onClose = undefined;
    this.send('</stream:stream>');
    this.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  destroy(): void {
    this.onClose = undefined;
    this.socket.destroy();
  }
}

function childTextOfRoot(raw: string): string {
  const gt = raw.indexOf('>');
  if (raw.charCodeAt(gt - 1) === 47) return '';
  const close = raw.lastIndexOf('</');
  return raw.slice(gt + 1, close).trim();
}

function saslFailure(raw: string): ClientError {
  const condition = /<failure[^>]*>\s*<([a-z-]+)/.exec(raw)?.[1] ?? elementName(raw);
  return new ClientError(`auth:${condition}`);
}

/** Connect, optionally STARTTLS, authenticate, bind, optionally send presence. */
export async function login(options: LoginOptions): Promise<XmppConnection> {
  const conn = await XmppConnection.connect(options);
  try {
    let features = await conn.open();
    if (options.starttls) {
      if (!features.includes('urn:ietf:params:xml:ns:xmpp-tls')) throw new ClientError('no-starttls');
      features = await conn.startTls();
    }
    features = await conn.authenticate(features, options.username, options.password, options.auth);
    await conn.bind(features, options.resource ?? 'bench');
    if (options.sm) {
      if (!features.includes(NS_SM)) throw new ClientError('no-sm', 'the server does not offer stream management (urn:xmpp:sm:3)');
      await conn.enableSm();
    }
    if (options.presence) conn.sendStanza('<presence/>');
    return conn;
  } catch (err) {
    conn.destroy();
    throw err;
  }
}

/** XEP-0077 in-band registration (over STARTTLS when offered). */
export async function registerAccount(options: ConnectOptions & { username: string; password: string }): Promise<boolean> {
  const conn = await XmppConnection.connect(options);
  try {
    let features = await conn.open();
    if (features.includes('urn:ietf:params:xml:ns:xmpp-tls')) features = await conn.startTls();
    const created = await conn.register(features, options.username, options.password);
    conn.close();
    return created;
  } catch (err) {
    conn.destroy();
    throw err;
  }
}
