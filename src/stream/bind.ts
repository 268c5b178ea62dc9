/** Resource binding (RFC 6120 §7). */
import { randomString } from '../util/random.ts';
import type { XmlElement } from '../xml/element.ts';
import { StanzaError } from '../xml/errors.ts';
import { Jid } from '../router/jid.ts';
import { prepareResource } from '../auth/precis.ts';

export const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
/** RFC 3921 session establishment, kept as an advertised no-op for older clients. */
export const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session';

/**
 * The full JID to bind: the client's requested resource, prepared, or a server-generated one
 * when it asked for none. A clash with a live session is resolved by the caller (the newer
 * session wins).
 */
export function bindResource(bind: XmlElement, username: string, domain: string): Jid | StanzaError {
  const requested = bind.getChildText('resource')?.trim();
  if (requested === undefined || requested === '') {
    return new Jid(username, domain, randomString(9, 'base64url'));
  }
  try {
    return new Jid(username, domain, prepareResource(requested));
  } catch {
    return new StanzaError('bad-request', 'the requested resource is not allowed');
  }
}
