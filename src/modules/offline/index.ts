/**
 * XEP-0160 offline messages. A message for an account with no resource that can take it
 * (RFC 6121 §8.5.2.2, the router's `message:offline`) is stored with an XEP-0203 delay
 * saying when the server received it, and delivered in order to the first resource that
 * sends available presence with a non-negative priority, then removed. A full queue answers
 * the sender with <resource-constraint/>: a message is either stored, delivered or refused,
 * never dropped.
 *
 * Writes go through a batching write queue (one transaction for many messages); a message
 * counts as stored only once its batch has committed, and the recipient's queue is checked
 * again then, should a resource have come online meanwhile. A database that stays unreachable
 * for `write_timeout` seconds gets the sender <internal-server-error/> of type wait.
 * With the archive (mam) on, a message reaches this module already archived for the
 * recipient and carries its <stanza-id/>.
 */
import { z } from 'zod';
import { defineModule, type Session } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError, errorReply } from '../../xml/errors.ts';
import { parseStoredElement } from '../../xml/stored.ts';
import type { OfflinePush, UserRef } from '../../storage/types.ts';
import { WriteGaveUp, WriteQueue, WriteQueueClosed, WriteQueueFull } from '../../storage/write-queue.ts';

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
    write_timeout: z.number().min(0.1).max(3600).default(30)
      .describe('Seconds a write to offline storage may keep failing (retried with back-off) before the sender gets <internal-server-error/> (type wait).'),
  }).strict(),
  setup(ctx) {
    ctx.addFeature('msgoffline');
    const quota = ctx.config.max_messages;

    /**
     * Group commit: messages for any accounts, one transaction. Batches commit in the order
     * their messages arrived, so each account's queue keeps arrival order; each message's
     * promise says whether it was stored (false: its account's queue was full).
     */
    const writes = new WriteQueue<OfflinePush, boolean>({
      write: async (batch) => {
        const refused = new Set(await ctx.storage.offline.pushMany(batch, quota));
        return batch.map((_, index) => !refused.has(index));
      },
      giveUpAfterMs: ctx.config.write_timeout * 1000,
      log: ctx.log,
      name: 'offline',
    });
    ctx.onStop(() => writes.close());

    /** Accounts (bare JIDs) whose queue is being delivered, and whether to look again after. */
    const delivering = new Map<string, { again: boolean }>();

    ctx.hook('message:offline', ({ stanza, to }) => {
      // Not worth keeping: dropped, as it would be with the account online but not interested.
      if (!worthStoring(stanza)) return true;
      const owner: UserRef = { username: to.local, domain: to.domain };
      const receivedAt = Date.now();
      return writes.enqueue({ owner, receivedAt, stanza: withDelay(stanza, ctx.host, receivedAt).toString() }).then(
        (stored) => {
          if (!stored) {
            ctx.route(errorReply(stanza, new StanzaError('resource-constraint', 'the recipient\'s offline storage is full')));
            return true;
          }
          // A resource that became available while the write was in flight may have read the
          // queue before this message was in it: deliver again.
          const target = ctx.sessionsOf(owner).find((s) => s.presence !== undefined && s.priority >= 0);
          if (target !== undefined) startDelivery(target);
          return true;
        },
        (err: unknown) => {
          ctx.log.error({ err }, 'offline message not stored: refused');
          ctx.route(errorReply(stanza, storageFailure(err)));
          return true;
        },
      );
    });

    ctx.hook('presence:outbound', ({ session, stanza }) => {
      // The first presence that makes the session a delivery target (RFC 6121 §8.5.2.1).
      const wasTarget = session.presence !== undefined && session.priority >= 0;
      if (!wasTarget && isAvailableBroadcast(stanza) && priorityOf(stanza) >= 0) {
        // After the presence module has made the session available (synchronously, in the
        // handler below this one) and started broadcasting it.
        setImmediate(() => startDelivery(session));
      }
      return undefined;
    }, BEFORE_PRESENCE);

    function startDelivery(session: Session): void {
      const key = session.jid.bare;
      const running = delivering.get(key);
      if (running !== undefined) {
        running.again = true;
        return;
      }
      const state = { again: false };
      delivering.set(key, state);
      void deliver(session, state)
        .catch((err: unknown) => ctx.log.error({ err }, 'offline delivery failed'))
        .finally(() => delivering.delete(key));
    }

    /** Sends the queue, oldest first, then removes what was sent; again while more arrived meanwhile. */
    async function deliver(session: Session, state: { again: boolean }): Promise<void> {
      const owner: UserRef = session.user;
      do {
        state.again = false;
        // Only to a session still registered and still a delivery target.
        if (ctx.sessionByJid(session.jid) !== session || session.presence === undefined || session.priority < 0) return;
        const queued = await ctx.storage.offline.peek(owner);
        if (queued.length === 0) continue;
        if (ctx.sessionByJid(session.jid) !== session || session.presence === undefined) return;
        for (const message of queued) {
          const element = parseStoredElement(message.stanza);
          if (element === undefined) ctx.log.error({ seq: message.seq }, 'unreadable offline message skipped');
          else session.send(element);
        }
        await ctx.storage.offline.remove(owner, queued[queued.length - 1].seq);
      } while (state.again);
    }
  },
});

/**
 * The error a sender gets when offline storage could not take the message: an overloaded
 * server (write queue full) is <resource-constraint/>; a database that stayed unreachable, or
 * a server shutting down, is <internal-server-error/> of type wait (try again later); a
 * write the database refused is <internal-server-error/>.
 */
function storageFailure(error: unknown): StanzaError {
  if (error instanceof WriteQueueFull) return new StanzaError('resource-constraint', 'offline storage is overloaded; try again later');
  if (error instanceof WriteGaveUp || error instanceof WriteQueueClosed) {
    return new StanzaError('internal-server-error', 'offline storage is unavailable; try again later', { type: 'wait' });
  }
  return new StanzaError('internal-server-error', 'offline storage could not store the message');
}

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
