/**
 * XEP-0352 client state indication. While a client says it is inactive (a phone in a
 * pocket), presence updates and chat states are held back, keeping only the latest one per
 * sender, so the radio is not woken for them; anything that matters (a message with a body,
 * an IQ, a subscription request, an error) first flushes what was held, in order, then goes
 * out at once. <active/> flushes everything.
 *
 * Held stanzas have not been sent, so stream management (XEP-0198) neither counts nor queues
 * them until they go out; if the session ends first, the stream takes them back as
 * undeliverable (a held message goes to offline storage). A resumed stream starts active
 * (§5.2): the stream then sends what was held and removes the filter.
 */
import { z } from 'zod';
import { defineModule, type OutboundFilter, type Session } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';

const NS_CSI = 'urn:xmpp:csi:0';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const NS_HINTS = 'urn:xmpp:hints';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
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
      const current = session.outboundFilter;
      if (element.name === 'inactive') {
        if (!(current instanceof Holder)) session.setOutboundFilter(new Holder(session, ctx.config.max_held));
      } else if (element.name === 'active') {
        if (!(current instanceof Holder)) return;
        session.setOutboundFilter(undefined);
        for (const stanza of current.release()) session.deliver(stanza);
      }
    });
  },
});

/** The outbound filter of an inactive session. */
class Holder implements OutboundFilter {
  /** Insertion-ordered; a newer stanza for the same key replaces the older and moves last. */
  private readonly held = new Map<string, XmlElement>();
  private readonly session: Session;
  private readonly maxHeld: number;

  constructor(session: Session, maxHeld: number) {
    this.session = session;
    this.maxHeld = maxHeld;
  }

  hold(stanza: XmlElement): boolean {
    const key = collapseKey(stanza);
    if (key === undefined) {
      this.flush();
      return false;
    }
    this.held.delete(key);
    this.held.set(key, stanza);
    if (this.held.size > this.maxHeld) this.flush();
    return true;
  }

  release(): XmlElement[] {
    const out = [...this.held.values()];
    this.held.clear();
    return out;
  }

  private flush(): void {
    for (const stanza of this.release()) this.session.deliver(stanza);
  }
}

/** What a stanza may be collapsed with, or undefined when it must go out now. */
function collapseKey(stanza: XmlElement): string | undefined {
  const from = stanza.attrs.from ?? '';
  if (stanza.name === 'presence') {
    const type = stanza.attrs.type;
    if (type !== undefined && type !== 'unavailable') return undefined; // errors and subscriptions
    // A room's answer to the client's own join (XEP-0045 status 110): the client waits for it.
    const status = stanza.getChild('x', NS_MUC_USER)?.getChildren('status') ?? [];
    if (status.some((s) => s.attrs.code === '110')) return undefined;
    return `presence ${from}`;
  }
  if (stanza.name !== 'message' || stanza.attrs.type === 'error') return undefined;
  if (isOnlyChatState(stanza)) return `chatstate ${from}`;
  // A carbon copy (XEP-0280) of a chat state: one per conversation.
  const carbon = stanza.getChild('received', NS_CARBONS) ?? stanza.getChild('sent', NS_CARBONS);
  const inner = carbon?.getChild('forwarded', NS_FORWARD)?.getChild('message');
  if (inner !== undefined && stanza.getChildren().length === 1 && inner.attrs.type !== 'error' && isOnlyChatState(inner)) {
    return `chatstate carbon ${carbon!.name} ${inner.attrs.from ?? ''} ${inner.attrs.to ?? ''}`;
  }
  return undefined;
}

function isOnlyChatState(message: XmlElement): boolean {
  let state = false;
  for (const child of message.getChildren()) {
    if (child.attrs.xmlns === NS_CHATSTATES) state = true;
    else if (child.attrs.xmlns !== NS_HINTS) return false;
  }
  return state;
}
