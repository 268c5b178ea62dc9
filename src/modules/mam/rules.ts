/**
 * Which messages a user archive keeps (XEP-0313 §"User Archives"), and what a sender is told
 * when the archive cannot take one.
 *
 * Kept: messages of type chat or normal (no type, or one the server does not know, is normal:
 * RFC 6121 §5.2.2) that carry a <body/>, or a payload that is part of the conversation without
 * one (end-to-end encrypted content, reactions, retractions, shared files), or the XEP-0334
 * <store/> hint. Never kept: a message with <no-store/> or <no-permanent-store/> (those win
 * over <store/>: the sender asked for privacy), and groupchat, headline and error messages.
 * Chat states, receipts and chat markers alone are not conversation content.
 */
import type { XmlElement } from '../../xml/element.ts';
import { StanzaError } from '../../xml/errors.ts';
import { WriteGaveUp, WriteQueueClosed, WriteQueueFull } from '../../storage/write-queue.ts';

const NS_CLIENT = 'jabber:client';
const NS_HINTS = 'urn:xmpp:hints';

/** Payloads that are conversation content even without a <body/>. */
const CONTENT_PAYLOADS = new Set([
  'eu.siacs.conversations.axolotl', // OMEMO (legacy namespace)
  'urn:xmpp:omemo:2', // XEP-0384
  'urn:xmpp:openpgp:0', // XEP-0373
  'jabber:x:encrypted', // XEP-0027
  'urn:xmpp:reactions:0', // XEP-0444
  'urn:xmpp:message-retract:1', // XEP-0424
  'jabber:x:oob', // XEP-0066
  'urn:xmpp:sfs:0', // XEP-0447
]);

export function archivable(stanza: XmlElement): boolean {
  const type = stanza.attrs.type;
  if (type === 'groupchat' || type === 'headline' || type === 'error') return false;
  let keep = false;
  for (const child of stanza.children) {
    if (typeof child === 'string') continue;
    const ns = child.attrs.xmlns;
    if (ns === undefined || ns === NS_CLIENT) {
      if (child.name === 'body') keep = true;
    } else if (ns === NS_HINTS) {
      if (child.name === 'no-store' || child.name === 'no-permanent-store') return false;
      if (child.name === 'store') keep = true;
    } else if (CONTENT_PAYLOADS.has(ns)) {
      keep = true;
    }
  }
  return keep;
}

/** The text of the message's bodies (every language), for full-text search. */
export function bodyText(stanza: XmlElement): string | undefined {
  let text: string | undefined;
  for (const child of stanza.children) {
    if (typeof child === 'string' || child.name !== 'body') continue;
    const ns = child.attrs.xmlns;
    if (ns !== undefined && ns !== NS_CLIENT) continue;
    text = text === undefined ? child.text() : `${text}\n${child.text()}`;
  }
  return text;
}

/**
 * The error a sender gets when `what` (the archive, offline storage) could not store the
 * message: a full write queue means an overloaded server (<resource-constraint/>, wait); a
 * database that stayed unreachable until the queue gave up, or a server shutting down, is
 * <internal-server-error/> of type wait (try again later); a write the database refused
 * outright is <internal-server-error/> of type cancel.
 */
export function storageFailure(error: unknown, what: string): StanzaError {
  if (error instanceof StanzaError) return error;
  if (error instanceof WriteQueueFull) return new StanzaError('resource-constraint', `${what} is overloaded; try again later`);
  if (error instanceof WriteGaveUp || error instanceof WriteQueueClosed) {
    return new StanzaError('internal-server-error', `${what} is unavailable; try again later`, { type: 'wait' });
  }
  return new StanzaError('internal-server-error', `${what} could not store the message`);
}
