/**
 * XEP-0352 client state indication. While a client says it is inactive (a phone in a
 * pocket), presence updates and chat states are held back, keeping only the latest one per
 * sender, so the radio is not woken for them; anything that matters (a message with a body,
 * an IQ, a subscription request, an error) first flushes what was held, in order, then goes
 * out at once. <active/> flushes everything.
 */
import { z } from 'zod';
import { defineModule, type Session } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';

const NS_CSI = 'urn:xmpp:csi:0';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const NS_HINTS = 'urn:xmpp:hints';
const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

export default defineModule({
  name: 'csi',
  config: z.object({
    max_held: z.number().int().min(1).max(100_000).default(1000)
      .describe('Most stanzas held for one inactive client (one per contact and kind); beyond it everything held is sent.'),
  }).strict(),
  setup(ctx) {
    ctx.addStreamFeature(el('csi', { xmlns: NS_CSI }));
    ctx.handleNonza(NS_CSI, (element, session) => {
      if (element.name === 'inactive') session.setOutboundFilter(holder(session, ctx.config.max_held));
      else if (element.name === 'active') {
        const held = session.data.get('csi') as Held | undefined;
        session.setOutboundFilter(undefined);
        held?.flush();
      }
    });
  },
});

interface Held {
  flush(): void;
}

/** The outbound filter of an inactive session. */
function holder(session: Session, maxHeld: number): (stanza: XmlElement) => boolean {
  // Insertion-ordered; a newer stanza for the same key replaces the older and moves last.
  const held = new Map<string, XmlElement>();
  const flush = () => {
    for (const stanza of held.values()) session.deliver(stanza);
    held.clear();
  };
  session.data.set('csi', { flush } satisfies Held);
  return (stanza) => {
    const key = collapseKey(stanza);
    if (key === undefined) {
      flush();
      return false;
    }
    held.delete(key);
    held.set(key, stanza);
    if (held.size > maxHeld) flush();
    return true;
  };
}

/** What a stanza may be collapsed with, or undefined when it must go out now. */
function collapseKey(stanza: XmlElement): string | undefined {
  const from = stanza.attrs.from ?? '';
  if (stanza.name === 'presence') {
    const type = stanza.attrs.type;
    if (type !== undefined && (type === 'error' || SUBSCRIPTION_TYPES.has(type))) return undefined;
    return `presence ${from}`;
  }
  if (stanza.name === 'message' && isOnlyChatState(stanza)) return `chatstate ${from}`;
  return undefined;
}

function isOnlyChatState(message: XmlElement): boolean {
  let state = false;
  for (const child of message.getChildren()) {
    if (child.attrs.xmlns === NS_CHATSTATES) state = true;
    else if (child.attrs.xmlns !== NS_HINTS) return false;
  }
  return state && message.attrs.type !== 'error';
}
