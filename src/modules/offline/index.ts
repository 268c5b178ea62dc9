/**
 * XEP-0160 offline messages. A message for an account with no resource that can take it
 * (RFC 6121 §8.5.2.2, the router's `message:offline`) is stored with an XEP-0203 delay
 * saying when the server received it, and delivered in order to the first resource that
 * sends available presence with a non-negative priority. A full queue answers the sender
 * with <resource-constraint/>: a message is either stored, delivered or refused, never dropped.
 */
import { z } from 'zod';
import { defineModule, type Session } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError, errorReply } from '../../xml/errors.ts';
import { parseStoredElement } from '../../xml/stored.ts';
import type { UserRef } from '../../storage/types.ts';

const NS_DELAY = 'urn:xmpp:delay';
const NS_HINTS = 'urn:xmpp:hints';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
/** Above the presence module's handling of the client's own presence (0), which ends the chain. */
const BEFORE_PRESENCE = 10;

export default defineModule({
  name: 'offline',
  config: z.object({
    max_messages: z.number().int().min(1).max(100_000).default(1000)
      .describe('Most messages kept for one account while it is offline; beyond it senders get <resource-constraint/>.'),
  }).strict(),
  setup(ctx) {
    ctx.addFeature('msgoffline');
    /** Accounts whose queue is being delivered, so two resources coming online don't both get it. */
    const delivering = new Set<string>();

    /**
     * Writes per account, chained: messages are routed concurrently, and on PostgreSQL two
     * transactions in flight could otherwise commit (and so be numbered) out of arrival order.
     */
    const writes = new Map<string, Promise<unknown>>();

    ctx.hook('message:offline', ({ stanza, to }) => {
      if (!worthStoring(stanza)) return true;
      const owner = { username: to.local, domain: to.domain };
      const receivedAt = Date.now();
      const message = { receivedAt, stanza: withDelay(stanza, ctx.host, receivedAt).toString() };
      const key = to.bare;
      const write = (writes.get(key) ?? Promise.resolve())
        .then(() => ctx.storage.offline.push(owner, message, ctx.config.max_messages))
        .finally(() => { if (writes.get(key) === write) writes.delete(key); });
      writes.set(key, write.catch(() => undefined));
      return write.then((stored) => {
        if (!stored) ctx.route(errorReply(stanza, new StanzaError('resource-constraint', 'the recipient\'s offline storage is full')));
        return true;
      });
    });

    ctx.hook('presence:outbound', ({ session, stanza }) => {
      // The first presence that makes the session a delivery target (RFC 6121 §8.5.2.1).
      const wasTarget = session.presence !== undefined && session.priority >= 0;
      if (!wasTarget && isAvailableBroadcast(stanza) && priorityOf(stanza) >= 0) {
        // After the presence module has made the session available and broadcast it.
        setImmediate(() => void deliver(session).catch((err: unknown) => ctx.log.error({ err }, 'offline delivery failed')));
      }
      return undefined;
    }, BEFORE_PRESENCE);

    async function deliver(session: Session): Promise<void> {
      const key = `${session.user.username}@${session.user.domain}`;
      if (delivering.has(key)) return;
      delivering.add(key);
      try {
        const owner: UserRef = session.user;
        const queued = await ctx.storage.offline.peek(owner);
        if (queued.length === 0 || session.presence === undefined) return;
        for (const message of queued) {
          const element = parseStoredElement(message.stanza);
          if (element === undefined) ctx.log.error({ seq: message.seq }, 'unreadable offline message skipped');
          else session.send(element);
        }
        await ctx.storage.offline.remove(owner, queued[queued.length - 1].seq);
      } finally {
        delivering.delete(key);
      }
    }
  },
});

/**
 * XEP-0160 §3 with the XEP-0334 hints: chat and normal messages are kept, unless they only
 * carry a chat state (XEP-0085 §5.6: those are transient) or ask not to be stored.
 */
function worthStoring(stanza: XmlElement): boolean {
  const type = stanza.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  if (stanza.getChild('store', NS_HINTS) !== undefined) return true;
  if (stanza.getChild('no-store', NS_HINTS) !== undefined) return false;
  const payload = stanza.getChildren().filter((child) => child.attrs.xmlns !== NS_CHATSTATES && child.attrs.xmlns !== NS_HINTS);
  return payload.length > 0;
}

/** XEP-0203: when the server received it, unless our server already stamped it. */
function withDelay(stanza: XmlElement, domain: string, receivedAt: number): XmlElement {
  const existing = stanza.getChildren('delay', NS_DELAY).some((delay) => delay.attrs.from === domain);
  if (existing) return stanza;
  const copy = stanza.clone();
  copy.append(el('delay', { xmlns: NS_DELAY, from: domain, stamp: new Date(receivedAt).toISOString() }, 'Offline storage'));
  return copy;
}

function isAvailableBroadcast(stanza: XmlElement): boolean {
  return stanza.attrs.type === undefined && stanza.attrs.to === undefined;
}

function priorityOf(stanza: XmlElement): number {
  const text = stanza.getChildText('priority');
  if (text === undefined) return 0;
  const value = Number(text.trim());
  return Number.isInteger(value) ? value : -1;
}
