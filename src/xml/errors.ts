import { el, type XmlElement } from './element.ts';

export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
export const NS_STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';

/** RFC 6120 §8.3.3 defined stanza error conditions. */
export type StanzaErrorCondition =
  | 'bad-request' | 'conflict' | 'feature-not-implemented' | 'forbidden' | 'gone'
  | 'internal-server-error' | 'item-not-found' | 'jid-malformed' | 'not-acceptable'
  | 'not-allowed' | 'not-authorized' | 'policy-violation' | 'recipient-unavailable'
  | 'redirect' | 'registration-required' | 'remote-server-not-found'
  | 'remote-server-timeout' | 'resource-constraint' | 'service-unavailable'
  | 'subscription-required' | 'undefined-condition' | 'unexpected-request';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** The error type RFC 6120 §8.3.3 recommends for each condition. */
const DEFAULT_TYPE: Record<StanzaErrorCondition, StanzaErrorType> = {
  'bad-request': 'modify', conflict: 'cancel', 'feature-not-implemented': 'cancel',
  forbidden: 'auth', gone: 'cancel', 'internal-server-error': 'cancel',
  'item-not-found': 'cancel', 'jid-malformed': 'modify', 'not-acceptable': 'modify',
  'not-allowed': 'cancel', 'not-authorized': 'auth', 'policy-violation': 'modify',
  'recipient-unavailable': 'wait', redirect: 'modify', 'registration-required': 'auth',
  'remote-server-not-found': 'cancel', 'remote-server-timeout': 'wait',
  'resource-constraint': 'wait', 'service-unavailable': 'cancel',
  'subscription-required': 'auth', 'undefined-condition': 'cancel', 'unexpected-request': 'wait',
};

/** Thrown by handlers to answer a stanza with an error; turned into an error reply by the router. */
export class StanzaError extends Error {
  readonly condition: StanzaErrorCondition;
  readonly type: StanzaErrorType;
  readonly text: string | undefined;
  /** Application-specific condition element placed beside the defined condition. */
  readonly appCondition: XmlElement | undefined;

  constructor(condition: StanzaErrorCondition, text?: string, options: { type?: StanzaErrorType; appCondition?: XmlElement } = {}) {
    super(text ? `${condition}: ${text}` : condition);
    this.condition = condition;
    this.type = options.type ?? DEFAULT_TYPE[condition];
    this.text = text;
    this.appCondition = options.appCondition;
  }

  toElement(): XmlElement {
    return el(
      'error',
      { type: this.type },
      el(this.condition, { xmlns: NS_STANZAS }),
      this.text !== undefined && el('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, this.text),
      this.appCondition,
    );
  }
}

/**
 * The error reply to a stanza (RFC 6120 §8.3.1): same name and id, addresses swapped, type
 * 'error'. The original payload is not echoed back, so nothing a sender wrote (a message
 * body, say) is reflected to anyone.
 */
export function errorReply(stanza: XmlElement, error: StanzaError): XmlElement {
  return el(stanza.name, { from: stanza.attrs.to, to: stanza.attrs.from, id: stanza.attrs.id, type: 'error' }, error.toElement());
}

/** RFC 6120 §4.9.3 stream error conditions. */
export type StreamErrorCondition =
  | 'bad-format' | 'bad-namespace-prefix' | 'conflict' | 'connection-timeout' | 'host-gone'
  | 'host-unknown' | 'improper-addressing' | 'internal-server-error' | 'invalid-from'
  | 'invalid-namespace' | 'invalid-xml' | 'not-authorized' | 'not-well-formed'
  | 'policy-violation' | 'remote-connection-failed' | 'reset' | 'resource-constraint'
  | 'restricted-xml' | 'see-other-host' | 'system-shutdown' | 'undefined-condition'
  | 'unsupported-encoding' | 'unsupported-feature' | 'unsupported-stanza-type'
  | 'unsupported-version';

export function streamErrorElement(condition: StreamErrorCondition, text?: string): XmlElement {
  return el(
    'stream:error',
    {},
    el(condition, { xmlns: NS_STREAMS }),
    text !== undefined && el('text', { xmlns: NS_STREAMS, 'xml:lang': 'en' }, text),
  );
}
