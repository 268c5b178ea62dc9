import type { StreamErrorCondition } from '../xml/errors.ts';
import type { XmlElement } from '../xml/element.ts';
import type { ChannelBinding } from '../auth/sasl.ts';

/** What a transport reports to the stream it carries. */
export interface StreamEvents {
  /** The peer opened (or, after a restart, reopened) the stream. */
  streamStart(name: string, attrs: Record<string, string>): void;
  stanza(element: XmlElement): void;
  /** The peer closed the stream. */
  streamEnd(): void;
  /** The peer sent something the XML layer rejects; the condition is a stream error name. */
  xmlError(condition: StreamErrorCondition, text: string | undefined): void;
  /** The connection is gone (whatever the reason). Called once. */
  closed(): void;
}

/**
 * A connection carrying one XMPP stream. TCP frames a byte stream; WebSocket and BOSH (to
 * come) frame elements; the stream state machine sees only this interface.
 */
export interface StreamTransport {
  readonly remoteAddress: string;
  /** TLS is active. */
  readonly secure: boolean;
  /** STARTTLS can still be negotiated on this connection. */
  readonly canStartTls: boolean;
  /** performance.now() when the peer last sent anything, whitespace keepalives included. */
  readonly lastActivity: number;
  bind(events: StreamEvents): void;
  /** Send our stream header. */
  openStream(attrs: Record<string, string>): void;
  send(element: XmlElement | string): void;
  /** Send the closing tag and end the connection once written. */
  closeStream(): void;
  /** Upgrade to TLS after <proceed/>; input received before the handshake is discarded. */
  startTls(): Promise<void>;
  /** Expect a new stream header (after SASL success). */
  restart(): void;
  /** Stop or resume reading from the peer (backpressure). */
  pause(): void;
  resume(): void;
  /** Drop the connection without any goodbye. */
  destroy(): void;
  channelBindings(): ChannelBinding[];
}
