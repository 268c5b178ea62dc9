/** Presence stanza helpers (RFC 6121 §4.7). */
import type { XmlElement } from '../../xml/element.ts';
import { StanzaError } from '../../xml/errors.ts';

/** Every 'type' a presence stanza may have (RFC 6121 §4.7.1); none means available. */
export const PRESENCE_TYPES: ReadonlySet<string> = new Set([
  'error', 'probe', 'subscribe', 'subscribed', 'unavailable', 'unsubscribe', 'unsubscribed',
]);

/**
 * The priority of an available presence (§4.7.2.3): an integer from -128 to +127, 0 when
 * absent. Anything else, or more than one <priority/>, is a bad request.
 */
export function parsePriority(stanza: XmlElement): number | StanzaError {
  const elements = stanza.getChildren('priority');
  if (elements.length === 0) return 0;
  if (elements.length > 1) return new StanzaError('bad-request', 'a presence has at most one <priority/>');
  const text = elements[0].text().trim();
  if (!/^[+-]?[0-9]{1,3}$/.test(text)) return new StanzaError('bad-request', 'the priority must be an integer from -128 to 127');
  const value = Number(text);
  if (value < -128 || value > 127) return new StanzaError('bad-request', 'the priority must be an integer from -128 to 127');
  return value === 0 ? 0 : value; // no -0
}

/** A copy of `stanza` addressed to `to` (each recipient gets its own, so hooks may change it). */
export function addressed(stanza: XmlElement, to: string, from?: string): XmlElement {
  const copy = stanza.clone();
  copy.attrs.to = to;
  if (from !== undefined) copy.attrs.from = from;
  return copy;
}
