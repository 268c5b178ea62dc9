/**
 * RFC 6121 §4 presence: initial presence, broadcasts, probes, directed presence and the
 * unavailable presence of a session that ends. Who receives the user's presence comes from
 * the `roster` service (subscription from/both); without the roster module only the user's
 * own resources do.
 *
 * Hooks and priorities (higher runs first):
 *   500   blocking (drops or refuses stanzas to and from blocked JIDs, before anything here)
 *   100   roster: subscription stanzas either way; keeps presence behind pending roster changes
 *    50   presence:bare / presence:full: probes (§4.3.2), answered here
 *     0   presence:outbound: the client's own presence, broadcast or directed (§4.2, §4.4-4.6)
 *  -1000  default delivery (src/router/delivery.ts): presence for an account goes to its
 *         available resources, presence for a full JID to that session
 * Modules that filter what a session receives (CSI) belong between 50 and -1000 on the
 * delivery hooks: everything this module sends to a user, the user's own resources included,
 * goes through ctx.route and so through presence:bare / presence:full.
 *
 * Not implemented: replying to probes for offline accounts with their last unavailable
 * presence (§4.3.2 step 3 is a SHOULD; clients assume "offline" without it, and it would
 * cost a stanza per offline contact at every login), and presence for remote contacts
 * (no server-to-server yet: their presence is routed and bounces with <remote-server-not-found/>).
 */
import { z } from 'zod';
import { defineModule, type Session } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError, errorReply } from '../../xml/errors.ts';
import { tryParseJid, type Jid } from '../../router/jid.ts';
import type { UserRef } from '../../storage/types.ts';
import { addressed, parsePriority, PRESENCE_TYPES } from './stanzas.ts';

const OUTBOUND_PRIORITY = 0;
const PROBE_PRIORITY = 50;

/** Per session: JIDs that got directed available presence and are not subscribers (§4.6.3). */
const DIRECTED = 'presence:directed';

const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

function hasFrom(subscription: string | undefined): boolean {
  return subscription === 'from' || subscription === 'both';
}

function directedOf(session: Session): Set<string> {
  let set = session.data.get(DIRECTED) as Set<string> | undefined;
  if (set === undefined) {
    set = new Set();
    session.data.set(DIRECTED, set);
  }
  return set;
}

export default defineModule({
  name: 'presence',
  config: z.object({}).strict(),
  setup(ctx) {
    const userOf = (jid: Jid): UserRef => ({ username: jid.local, domain: jid.domain });

    async function subscribers(user: UserRef): Promise<string[]> {
      return (await ctx.use('roster')?.presenceSubscribers(user)) ?? [];
    }

    async function subscriptions(user: UserRef): Promise<string[]> {
      return (await ctx.use('roster')?.presenceSubscriptions(user)) ?? [];
    }

    const available = (user: UserRef): Session[] => ctx.sessionsOf(user).filter((s) => s.presence !== undefined);

    /** Unavailable presence from `session` to whoever had its presence (§4.5.2). */
    async function goUnavailable(session: Session, stanza: XmlElement): Promise<void> {
      const wasAvailable = session.presence !== undefined;
      const directed = [...directedOf(session)];
      directedOf(session).clear();
      if (wasAvailable) {
        for (const jid of await subscribers(session.user)) ctx.route(addressed(stanza, jid));
        // The user's available resources, this one included (unless its session has ended).
        for (const s of available(session.user)) ctx.route(addressed(stanza, s.jid.full));
      }
      session.presence = undefined;
      session.priority = 0;
      session.interested = false;
      for (const jid of directed) ctx.route(addressed(stanza, jid));
    }

    /** Broadcast available presence (§4.2.2 initial, §4.4.2 updates). */
    async function goAvailable(session: Session, stanza: XmlElement, priority: number): Promise<void> {
      const initial = session.presence === undefined;
      session.presence = stanza;
      session.priority = priority;
      session.interested = true;
      const user = session.user;
      for (const jid of await subscribers(user)) ctx.route(addressed(stanza, jid));
      // Every available resource of the user, this one included (§4.2.2, §4.4.2).
      for (const s of available(user)) ctx.route(addressed(stanza, s.jid.full));
      if (!initial) return;
      // The new resource learns about the user's other available resources...
      for (const s of available(user)) {
        if (s !== session) ctx.route(addressed(s.presence!, session.jid.full, s.jid.full));
      }
      // ...and about its contacts, whose servers answer probes sent from the bare JID (§4.3.1).
      for (const jid of await subscriptions(user)) {
        ctx.route(el('presence', { type: 'probe', from: session.jid.bare, to: jid }));
      }
    }

    /** Directed presence (§4.6): routed as is; remembered when the target is not a subscriber. */
    async function directed(session: Session, stanza: XmlElement, to: Jid): Promise<void> {
      const type = stanza.attrs.type;
      if (to.bare === session.jid.bare || (type !== undefined && type !== 'unavailable')) return;
      if (type === 'unavailable') {
        directedOf(session).delete(to.full);
        return;
      }
      const item = await ctx.use('roster')?.getItem(session.user, to.bare);
      if (!hasFrom(item?.subscription)) directedOf(session).add(to.full);
    }

    ctx.hook('presence:outbound', ({ session, stanza }) => {
      const type = stanza.attrs.type;
      if (type !== undefined && !PRESENCE_TYPES.has(type)) {
        session.send(errorReply(stanza, new StanzaError('bad-request', `unknown presence type '${type}'`)));
        return true;
      }
      if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) return false; // the roster module's
      let priority = 0;
      if (type === undefined) {
        const parsed = parsePriority(stanza);
        if (parsed instanceof StanzaError) {
          session.send(errorReply(stanza, parsed));
          return true;
        }
        priority = parsed;
      }
      const to = tryParseJid(stanza.attrs.to);
      if (to !== undefined) return directed(session, stanza, to).then(() => false);
      if (type === undefined) return goAvailable(session, stanza, priority).then(() => true);
      if (type === 'unavailable') return goUnavailable(session, stanza).then(() => true);
      // A probe or an error needs an addressee.
      return true;
    }, OUTBOUND_PRIORITY);

    /** §4.3.2: a contact's server asks for the account's presence. */
    async function answerProbe(stanza: XmlElement, owner: Jid): Promise<void> {
      const from = tryParseJid(stanza.attrs.from);
      if (from === undefined) return;
      const user = userOf(owner);
      if (from.bare !== owner.bare) {
        // No account, or no subscription: the same answer, so nothing about either leaks.
        const roster = ctx.use('roster');
        const item = roster !== undefined && (await ctx.storage.users.exists(user)) ? await roster.getItem(user, from.bare) : undefined;
        if (!hasFrom(item?.subscription)) {
          ctx.route(el('presence', { type: 'unsubscribed', from: owner.bare, to: from.bare }));
          return;
        }
      }
      for (const s of available(user)) ctx.route(addressed(s.presence!, from.full, s.jid.full));
    }

    ctx.hook('presence:bare', ({ stanza, to }) => {
      if (stanza.attrs.type !== 'probe') return false;
      return answerProbe(stanza, to).then(() => true);
    }, PROBE_PRIORITY);

    // §8.5.3: a probe to a full JID is answered as if sent to the bare JID.
    ctx.hook('presence:full', ({ stanza, to }) => {
      if (stanza.attrs.type !== 'probe') return false;
      return answerProbe(stanza, to.toBare()).then(() => true);
    }, PROBE_PRIORITY);

    // A session that ends without saying so goes unavailable (§4.6.3, §4.5.2), dropped or not.
    ctx.hook('session:closed', async ({ session }) => {
      if (session.presence === undefined && directedOf(session).size === 0) return;
      await goUnavailable(session, el('presence', { type: 'unavailable', from: session.jid.full }));
    });
  },
});
