/**
 * Which messages are carbon-copied: XEP-0280 (1.0.1) §6.1, with the §8 private opt-out and
 * the XEP-0334 no-copy hint. A message is copied when it has none of the opt-outs and
 *  - it is of type chat, or of type normal with a <body/>;
 *  - or it carries an instant-messaging payload: XEP-0085 chat state, XEP-0184 receipt,
 *    XEP-0333 chat marker;
 *  - or it is an error answering a message that was copied (the caller keeps that history);
 *  - or the MUC rules say so: an XEP-0249 direct invitation or a mediated invitation is
 *    copied, a private message the user sends to an occupant (a full JID, marked with the
 *    muc#user <x/>) is copied; groupchat messages never are, and neither is anything else
 *    coming from a room (a private message from an occupant: the room already sends it to
 *    every joined client, so a copy would reach clients that are not in the room).
 * MUC traffic is recognised by the muc#user <x/> element (§6.1 allows that instead of
 * tracking which rooms each client joined), so a private message without it is copied.
 */
import type { XmlElement } from '../../xml/element.ts';

export const NS_CARBONS = 'urn:xmpp:carbons:2';
export const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_CLIENT = 'jabber:client';
const NS_HINTS = 'urn:xmpp:hints';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_DIRECT_INVITE = 'jabber:x:conference';
const IM_PAYLOADS = new Set([
  'http://jabber.org/protocol/chatstates', // XEP-0085
  'urn:xmpp:receipts', // XEP-0184
  'urn:xmpp:chat-markers:0', // XEP-0333
]);

/** `copy`; `skip`; `if-answer`: an error, copied only if it answers a copied message. */
export type Verdict = 'copy' | 'skip' | 'if-answer';

/** RFC 6121 §5.2.2: no type, or one the server does not know, means normal. */
export function messageType(stanza: XmlElement): 'chat' | 'error' | 'groupchat' | 'headline' | 'normal' {
  const type = stanza.attrs.type;
  return type === 'chat' || type === 'error' || type === 'groupchat' || type === 'headline' ? type : 'normal';
}

/**
 * `direction` is the user's side: 'sent' for what one of the user's clients sends,
 * 'received' for what arrives for the user. `toFullJid`: the message is addressed to a full
 * JID (a private message to a MUC occupant, when it carries the muc#user <x/>).
 */
export function classify(stanza: XmlElement, direction: 'sent' | 'received', toFullJid: boolean): Verdict {
  const type = messageType(stanza);
  if (type === 'groupchat') return 'skip';
  let muc: XmlElement | undefined;
  let imPayload = false;
  let invitation = false;
  let body = false;
  for (const child of stanza.children) {
    if (typeof child === 'string') continue;
    const ns = child.attrs.xmlns;
    if (ns === undefined || ns === NS_CLIENT) {
      if (child.name === 'body') body = true;
    } else if (ns === NS_CARBONS) {
      // <private/> (§8); or a <sent/>/<received/>: a carbon is never copied again, and one
      // from anyone but the user's own server is a forgery the client must ignore (§11).
      return 'skip';
    } else if (ns === NS_HINTS) {
      if (child.name === 'no-copy') return 'skip';
    } else if (ns === NS_MUC_USER) {
      muc = child;
    } else if (ns === NS_DIRECT_INVITE) {
      invitation = true;
    } else if (IM_PAYLOADS.has(ns)) {
      imPayload = true;
    }
  }
  if (type === 'error') return 'if-answer';
  if (muc !== undefined) {
    if (muc.getChild('invite') !== undefined) return 'copy';
    if (direction === 'received') return 'skip';
    if (toFullJid) return 'copy';
  }
  if (invitation || imPayload || type === 'chat') return 'copy';
  return type === 'normal' && body ? 'copy' : 'skip';
}
