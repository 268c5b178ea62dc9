/**
 * XEP-0280 message carbons: every device of a user sees the whole conversation. A resource
 * that enabled carbons gets a `<sent/>` copy of what the user's other resources send and a
 * `<received/>` copy of what they receive, each wrapped in an XEP-0297 forward whose `from`
 * is the user's bare JID, so clients can tell a genuine copy from a forged one.
 */
import { z } from 'zod';
import { defineModule, type Session } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { bareJidRecipients } from '../../router/delivery.ts';

const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_HINTS = 'urn:xmpp:hints';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
/** Payloads of instant messaging that make a message worth copying whatever its type (§6). */
const IM_PAYLOADS = new Set([
  'http://jabber.org/protocol/chatstates', // XEP-0085
  'urn:xmpp:receipts', // XEP-0184
  'urn:xmpp:chat-markers:0', // XEP-0333
]);
const STATE = 'carbons';
/** Below blocking (500), which may refuse a message, above the default delivery (-1000). */
const INBOUND_PRIORITY = -900;
const OUTBOUND_PRIORITY = -100;

export default defineModule({
  name: 'carbons',
  config: z.object({}).strict(),
  setup(ctx) {
    ctx.addFeature(NS_CARBONS);
    const enabled = (session: Session): boolean => session.data.get(STATE) === true;

    for (const action of ['enable', 'disable'] as const) {
      ctx.handleIq({ xmlns: NS_CARBONS, element: action, type: 'set', target: 'self' }, ({ session }) => {
        session?.data.set(STATE, action === 'enable');
      });
    }

    ctx.hook('message:outbound', ({ session, stanza }) => {
      if (!eligible(stanza)) return undefined;
      for (const other of ctx.sessionsOf(session.user)) {
        if (other !== session && enabled(other)) other.send(copy('sent', other, stanza));
      }
      return undefined;
    }, OUTBOUND_PRIORITY);

    // Delivery to the bare JID decides who gets the message itself; every other enabled
    // resource gets the copy. Without an enabled resource the default rules deliver as usual.
    ctx.hook('message:bare', ({ stanza, to }) => {
      if (!eligible(stanza)) return undefined;
      const sessions = ctx.sessionsOf({ username: to.local, domain: to.domain });
      if (!sessions.some(enabled)) return undefined;
      const recipients = bareJidRecipients(sessions, stanza.attrs.type ?? 'normal');
      if (recipients.length === 0) return undefined; // offline storage's turn
      for (const session of recipients) session.send(stanza);
      for (const session of sessions) {
        if (enabled(session) && !recipients.includes(session)) session.send(copy('received', session, stanza));
      }
      return true;
    }, INBOUND_PRIORITY);

    ctx.hook('message:full', ({ stanza, to }) => {
      if (!eligible(stanza)) return undefined;
      const target = ctx.sessionByJid(to);
      if (target === undefined) return undefined; // the default rules fall back to the bare JID
      target.send(stanza);
      for (const session of ctx.sessionsOf(target.user)) {
        if (session !== target && enabled(session)) session.send(copy('received', session, stanza));
      }
      return true;
    }, INBOUND_PRIORITY);
  },
});

/** XEP-0280 §6, with the §7 private opt-out and the XEP-0334 no-copy hint. */
function eligible(stanza: XmlElement): boolean {
  const type = stanza.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  for (const child of stanza.getChildren()) {
    const ns = child.attrs.xmlns;
    if (ns === NS_CARBONS) return false; // `private`, or a carbon itself
    if (ns === NS_HINTS && child.name === 'no-copy') return false;
    if (ns === NS_MUC_USER) return false; // a MUC private message belongs to the joined resource
  }
  if (type === 'chat') return true;
  return stanza.getChild('body') !== undefined || stanza.getChildren().some((child) => IM_PAYLOADS.has(child.attrs.xmlns ?? ''));
}

function copy(kind: 'sent' | 'received', to: Session, stanza: XmlElement): XmlElement {
  const forwarded = stanza.clone();
  forwarded.attrs.xmlns ??= 'jabber:client';
  return el('message', { from: to.jid.bare, to: to.jid.full, type: stanza.attrs.type },
    el(kind, { xmlns: NS_CARBONS }, el('forwarded', { xmlns: NS_FORWARD }, forwarded)));
}
