/**
 * TCP transport: plain sockets with STARTTLS (RFC 6120 §5) and direct TLS (XEP-0368).
 * Frames the byte stream with the XML tokenizer; batches writes so that everything a
 * connection is sent during one event-loop turn leaves in one write (one syscall, and with TLS
 * one record), whichever incoming reads produced it.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { StreamParser } from '../xml/parser.ts';
import { escapeAttr, type XmlElement } from '../xml/element.ts';
import { streamErrorElement } from '../xml/errors.ts';
import { channelBindingsFor } from '../auth/channel-binding.ts';
import type { ChannelBinding } from '../auth/sasl.ts';
import type { StreamEvents, StreamTransport } from './transport.ts';

export type TlsMode = 'starttls_required' | 'starttls' | 'direct' | 'none';

export interface TcpListenerOptions {
  port: number;
  address: string;
  tlsMode: TlsMode;
  secureContext: tls.SecureContext | undefined;
  minTlsVersion: tls.SecureVersion;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxStanzaBytes: number;
  maxDepth: number;
  /** Read shaping per connection; 0 disables it. */
  bytesPerSecond: number;
}

const STREAM_CLOSE = '</stream:stream>';
/** A direct-TLS peer that has not finished its handshake by then is dropped. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Output pending beyond this is written at once rather than at the end of the turn. */
const MAX_PENDING_CHARS = 256 * 1024;
const NO_BINDINGS: ChannelBinding[] = [];

/**
 * Transports with output pending, written once per event-loop turn from a single
 * setImmediate: after the poll phase, so the stanzas that all the reads of one turn produce
 * for a connection leave together, and one immediate serves every connection.
 */
let dirty: TcpTransport[] = [];
let spare: TcpTransport[] = [];
let flushScheduled = false;

function flushDirty(): void {
  flushScheduled = false;
  const list = dirty;
  dirty = spare;
  for (let i = 0; i < list.length; i++) list[i].flush();
  list.length = 0;
  spare = list;
}

function markDirty(transport: TcpTransport): void {
  dirty.push(transport);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushDirty);
  }
}

export class TcpTransport implements StreamTransport {
  readonly remoteAddress: string;
  private socket: net.Socket;
  private readonly parser: StreamParser;
  private events: StreamEvents | undefined;
  private readonly options: TcpListenerOptions;
  private readonly log: Logger;
  private tlsSocket: tls.TLSSocket | undefined;
  private upgrading = false;
  private closedReported = false;
  lastActivity = performance.now();
  /** Output of this turn, written by flush(). */
  private pending = '';
  private ending = false;
  private bindings: ChannelBinding[] | undefined;
  private paused = false;
  /** Read shaping: bytes allowed before the next refill. */
  private budget: number;
  private budgetRefilledAt = Date.now();

  /** `log` is the listener's: debug lines carry `remote` themselves (no child logger per connection). */
  constructor(socket: net.Socket, options: TcpListenerOptions, log: Logger, remoteAddress = socket.remoteAddress ?? 'unknown') {
    this.socket = socket;
    this.options = options;
    this.log = log;
    this.remoteAddress = remoteAddress;
    this.budget = options.bytesPerSecond;
    if (socket instanceof tls.TLSSocket) this.tlsSocket = socket;
    this.parser = new StreamParser(
      {
        streamStart: (name, attrs) => { if (!this.upgrading) this.events?.streamStart(name, attrs); },
        stanza: (element) => { if (!this.upgrading) this.events?.stanza(element); },
        streamEnd: () => { if (!this.upgrading) this.events?.streamEnd(); },
        error: (condition, text) => { if (!this.upgrading) this.events?.xmlError(condition, text); },
      },
      { maxStanzaBytes: options.maxStanzaBytes, maxDepth: options.maxDepth },
    );
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    this.attach(socket);
  }

  get secure(): boolean {
    return this.tlsSocket !== undefined;
  }

  get canStartTls(): boolean {
    return this.tlsSocket === undefined && this.options.secureContext !== undefined && this.options.tlsMode !== 'none' && this.options.tlsMode !== 'direct';
  }

  bind(events: StreamEvents): void {
    this.events = events;
  }

  openStream(attrs: Record<string, string>): void {
    let header = "<?xml version='1.0'?><stream:stream";
    for (const key in attrs) header += ` ${key}='${escapeAttr(attrs[key])}'`;
    this.write(header + '>');
  }

  send(element: XmlElement | string): void {
    this.write(typeof element === 'string' ? element : element.toString());
  }

  closeStream(): void {
    if (this.ending) return;
    this.write(STREAM_CLOSE);
    this.ending = true;
    this.flush();
    this.socket.end();
    // A peer that never closes its side must not hold the socket.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  async startTls(): Promise<void> {
    if (!this.canStartTls || this.options.secureContext === undefined) throw new Error('STARTTLS not available');
    // Everything the peer sent after <starttls/> in cleartext is dropped: it could be an
    // injection that would otherwise be read as if it came over TLS.
    this.upgrading = true;
    const plain = this.socket;
    this.flush();
    this.detach(plain);
    const secure = new tls.TLSSocket(plain, {
      isServer: true,
      secureContext: this.options.secureContext,
    });
    this.socket = secure;
    this.tlsSocket = secure;
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', resolve);
      secure.once('error', reject);
    }).catch((err: unknown) => {
      this.log.debug({ remote: this.remoteAddress, err }, 'TLS handshake failed');
      secure.destroy();
      this.reportClosed();
      throw err;
    });
    this.parser.reset();
    this.upgrading = false;
    this.attach(secure);
  }

  restart(): void {
    this.parser.reset();
  }

  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    this.paused = false;
    this.socket.resume();
  }

  destroy(): void {
    this.pending = '';
    this.socket.destroy();
  }

  /**
   * Computed once per connection, and cheaply: the tls-exporter data only when a -PLUS
   * exchange reads it, the certificate hash once per secure context.
   */
  channelBindings(): ChannelBinding[] {
    if (this.tlsSocket === undefined) return NO_BINDINGS;
    if (this.upgrading) return channelBindingsFor(this.tlsSocket, this.options.secureContext);
    return (this.bindings ??= channelBindingsFor(this.tlsSocket, this.options.secureContext));
  }

  /** Write what this turn produced (called once per turn for every transport with output). */
  flush(): void {
    const data = this.pending;
    if (data === '') return;
    this.pending = '';
    if (!this.socket.destroyed) this.socket.write(data);
  }

  private attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** Only this transport's own listeners: the listener's connection accounting stays on the socket. */
  private detach(socket: net.Socket): void {
    socket.off('data', this.onData);
    socket.off('error', this.onError);
    socket.off('close', this.onClose);
  }

  private readonly onData = (chunk: Buffer): void => this.receive(chunk);
  private readonly onError = (err: Error): void => {
    this.log.debug({ remote: this.remoteAddress, err: err.message }, 'socket error');
  };
  private readonly onClose = (): void => this.reportClosed();

  private receive(chunk: Buffer): void {
    this.lastActivity = performance.now();
    if (this.options.bytesPerSecond > 0) this.shape(chunk.length);
    this.parser.write(chunk);
  }

  /** Token bucket on received bytes: over budget, stop reading until it refills. */
  private shape(bytes: number): void {
    const now = Date.now();
    const rate = this.options.bytesPerSecond;
    this.budget = Math.min(rate, this.budget + ((now - this.budgetRefilledAt) * rate) / 1000);
    this.budgetRefilledAt = now;
    this.budget -= bytes;
    if (this.budget < 0 && !this.paused) {
      this.socket.pause();
      setTimeout(() => { if (!this.paused) this.socket.resume(); }, Math.ceil((-this.budget / rate) * 1000)).unref();
    }
  }

  private write(data: string): void {
    if (this.ending || this.socket.destroyed) return;
    if (this.pending === '') {
      this.pending = data;
      markDirty(this);
      return;
    }
    this.pending += data;
    if (this.pending.length >= MAX_PENDING_CHARS) this.flush();
  }

  private reportClosed(): void {
    if (this.closedReported || this.upgrading) return;
    this.closedReported = true;
    this.events?.closed();
  }
}

/**
 * RFC 6120 §4.9.1.1: an error before the peer's header still goes inside a stream, so the
 * refused client learns why instead of seeing a bare reset.
 */
function refuse(socket: net.Socket, condition: 'resource-constraint' | 'policy-violation'): void {
  socket.on('error', () => undefined);
  socket.end(
    `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>` +
      streamErrorElement(condition, 'too many connections').toString() + STREAM_CLOSE,
  );
  setTimeout(() => socket.destroy(), 2000).unref();
}

/** Accepts connections for one `[[listen.c2s]]` entry, enforcing the connection limits. */
export class TcpListener {
  private readonly server: net.Server;
  private readonly perAddress = new Map<string, number>();
  private open = 0;
  private readonly options: TcpListenerOptions;

  constructor(options: TcpListenerOptions, log: Logger, onConnection: (transport: TcpTransport) => void) {
    this.options = options;
    const accept = (socket: net.Socket) => {
      const address = socket.remoteAddress ?? 'unknown';
      const fromAddress = this.perAddress.get(address) ?? 0;
      if (this.open >= options.maxConnections || fromAddress >= options.maxConnectionsPerAddress) {
        const condition = this.open >= options.maxConnections ? 'resource-constraint' : 'policy-violation';
        log.warn({ address, open: this.open, condition }, 'connection limit reached, refusing connection');
        // A direct-TLS peer can't read a cleartext error: it only sees the connection close.
        if (options.tlsMode === 'direct') socket.destroy();
        else refuse(socket, condition);
        return;
      }
      this.open++;
      this.perAddress.set(address, fromAddress + 1);
      socket.once('close', () => {
        this.open--;
        const left = (this.perAddress.get(address) ?? 1) - 1;
        if (left === 0) this.perAddress.delete(address);
        else this.perAddress.set(address, left);
      });
      if (options.tlsMode !== 'direct') {
        onConnection(new TcpTransport(socket, options, log, address));
        return;
      }
      // XEP-0368: TLS from the first byte. Wrapping the accepted socket (as STARTTLS does)
      // keeps one code path for the secure context and the connection accounting.
      const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: options.secureContext, ALPNProtocols: ['xmpp-client'] });
      const handshakeTimer = setTimeout(() => secure.destroy(), HANDSHAKE_TIMEOUT_MS);
      secure.once('error', (err) => {
        log.debug({ remote: address, err: err.message }, 'direct TLS handshake failed');
        secure.destroy();
      });
      secure.once('secure', () => {
        clearTimeout(handshakeTimer);
        secure.removeAllListeners('error');
        onConnection(new TcpTransport(secure, options, log, address));
      });
    };
    this.server = net.createServer(accept);
  }

  get connections(): number {
    return this.open;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port: this.options.port, host: this.options.address, backlog: 1024 }, () => {
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : this.options.port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
