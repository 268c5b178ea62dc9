/**
 * RFC 6121 roster management (§2) and presence subscriptions (§3, Appendix A), with roster
 * versioning (§2.6, XEP-0237). Provides the `roster` service other modules ask for
 * subscribers and subscriptions.
 *
 * Hooks (priority: higher runs first; the blocking module is at 500, the presence module at
 * 50 and 0, the default delivery rules at -1000):
 * - presence:outbound, 100: subscription stanzas from the user's clients (handled here, not
 *   routed as sent); and on initial presence, pending requests are redelivered (§3.1.3).
 * - presence:bare / presence:full, 100: subscription stanzas for a local account (one sent
 *   to a full JID is handled as if sent to the bare JID, §8.5.3); any other presence for an
 *   account whose roster is being changed waits for that change, so a contact's presence
 *   never overtakes the 'subscribed' sent before it.
 * - user:removed: contacts get 'unsubscribe' and 'unsubscribed' (§2.5.2).
 *
 * Not implemented: subscription pre-approval (§3.4; no <sub/> stream feature is offered),
 * and roster item delivery by groups or shared rosters.
 */
import { z } from 'zod';
import { defineModule } from '../api.ts';
import { el } from '../../xml/element.ts';
import { StanzaError, errorReply } from '../../xml/errors.ts';
import { tryParseJid } from '../../router/jid.ts';
import type { UserRef } from '../../storage/types.ts';
import { hasFrom, hasTo, isSubscriptionType } from './state.ts';
import { NS_ROSTER, parseRosterSet } from './items.ts';
import { Roster, type Push } from './subscriptions.ts';
import { parseStoredElement } from '../../xml/stored.ts';

const NS_ROSTERVER = 'urn:xmpp:features:rosterver';
const PRIORITY = 100;

const config = z.object({
  versioning: z.boolean().default(true)
    .describe('Roster versioning (RFC 6121 §2.6): a client that has the current version gets an empty result instead of the whole roster.'),
  max_items: z.number().int().min(1).max(100_000).default(5000)
    .describe('Most items one roster may hold; adding more is refused with <policy-violation/>, and subscription requests from new contacts are dropped.'),
  max_name_length: z.number().int().min(1).max(3000).default(1023)
    .describe('Longest item name (handle), in characters; longer is refused with <not-acceptable/>.'),
  max_group_length: z.number().int().min(1).max(3000).default(1023)
    .describe('Longest group name, in characters; longer is refused with <not-acceptable/>.'),
  max_groups: z.number().int().min(1).max(1000).default(100)
    .describe('Most groups one item may belong to; more is refused with <not-acceptable/>.'),
}).strict();

export default defineModule({
  name: 'roster',
  config,
  setup(ctx) {
    const roster = new Roster(ctx);
    const limits = { maxNameLength: ctx.config.max_name_length, maxGroupLength: ctx.config.max_group_length, maxGroups: ctx.config.max_groups };
    const userOf = (jid: { local: string; domain: string }): UserRef => ({ username: jid.local, domain: jid.domain });

    if (ctx.config.versioning) ctx.addStreamFeature(el('ver', { xmlns: NS_ROSTERVER }));

    ctx.provide('roster', {
      getItem: (owner, contact) => ctx.storage.roster.getItem(owner, contact),
      async presenceSubscribers(owner) {
        const { items } = await ctx.storage.roster.get(owner);
        return items.filter((i) => hasFrom(i.subscription)).map((i) => i.jid);
      },
      async presenceSubscriptions(owner) {
        const { items } = await ctx.storage.roster.get(owner);
        return items.filter((i) => hasTo(i.subscription)).map((i) => i.jid);
      },
    });

    // --- roster get and set (§2.1.3, §2.1.5) ---------------------------------------------

    ctx.handleIq({ xmlns: NS_ROSTER, element: 'query', type: 'get', target: 'self' }, async ({ from, payload, session }) => {
      // Interested from now on: a change racing with this get still reaches it as a push.
      if (session !== undefined) session.rosterRequested = true;
      return roster.rosterResult(userOf(from), payload.attrs.ver);
    });

    ctx.handleIq({ xmlns: NS_ROSTER, element: 'query', type: 'set', target: 'self' }, async ({ from, payload }) => {
      const owner = from.toBare();
      const user = userOf(owner);
      const set = parseRosterSet(payload, owner, limits);
      const contact = set.jid.full;
      return roster.changeThenPush(user, async () => {
        const item = await ctx.storage.roster.getItem(user, contact);
        if (set.kind === 'remove') {
          // §2.5.3: removing an item that is not there.
          if (item === undefined) throw new StanzaError('item-not-found', `${contact} is not in the roster`);
          roster.cancelSubscriptions(user, item);
          return { result: undefined, pushes: [await roster.commit(user, item, undefined)] };
        }
        if (item === undefined && (await ctx.storage.roster.get(user)).items.length >= ctx.config.max_items) {
          throw new StanzaError('policy-violation', `a roster holds at most ${ctx.config.max_items} items`);
        }
        const after = item === undefined
          ? { jid: contact, subscription: 'none' as const, askOut: false, askIn: false, groups: set.groups, name: set.name }
          : { ...item, name: set.name, groups: set.groups };
        if (after.name === undefined) delete after.name;
        const push: Push | undefined = await roster.commit(user, item, after, true);
        return { result: undefined, pushes: [push] };
      });
    });

    // Someone else's roster is not theirs to read or change (§2.1.5, §2.3.3).
    const forbidden = () => {
      throw new StanzaError('forbidden', 'a roster belongs to its account');
    };
    ctx.handleIq({ xmlns: NS_ROSTER, element: 'query', type: 'get', target: 'account' }, forbidden);
    ctx.handleIq({ xmlns: NS_ROSTER, element: 'query', type: 'set', target: 'account' }, forbidden);

    // --- subscription stanzas from the user ----------------------------------------------

    ctx.hook('presence:outbound', ({ session, stanza }) => {
      const type = stanza.attrs.type;
      if (isSubscriptionType(type)) {
        const to = tryParseJid(stanza.attrs.to);
        if (to === undefined) {
          session.send(errorReply(stanza, new StanzaError('bad-request', `a '${type}' presence needs a 'to' address`)));
          return true;
        }
        // Subscribing to oneself means nothing: the account always has its own presence.
        if (to.bare === session.jid.bare) return true;
        return roster.outbound(session, stanza, type, to).then(() => true);
      }
      // Initial presence: pending requests are delivered again until answered (§3.1.3).
      if (type === undefined && stanza.attrs.to === undefined && session.presence === undefined) {
        return roster.pendingRequests(session.user).then((requests) => {
          for (const xml of requests) {
            const request = parseStoredElement(xml);
            if (request !== undefined) session.send(request);
          }
          return false;
        });
      }
      return false;
    }, PRIORITY);

    // --- presence for local accounts -----------------------------------------------------

    ctx.hook('presence:bare', ({ stanza, to }) => {
      const type = stanza.attrs.type;
      if (!isSubscriptionType(type)) {
        // Keep presence behind the subscription changes routed to the account before it.
        return roster.queue.busy(to.bare) ? roster.queue.drained(to.bare).then(() => false) : false;
      }
      const from = tryParseJid(stanza.attrs.from);
      if (from === undefined || from.bare === to.bare) return true;
      // The contact's server stamps its bare JID (§3.1.2); a full JID is treated as the bare one.
      stanza.attrs.from = from.bare;
      stanza.attrs.to = to.bare;
      return roster.inbound(to, stanza, type, from.toBare()).then(() => true);
    }, PRIORITY);

    ctx.hook('presence:full', ({ stanza, to }) => {
      if (isSubscriptionType(stanza.attrs.type)) {
        const bare = to.toBare();
        stanza.attrs.to = bare.full;
        return ctx.fire('presence:bare', { stanza, to: bare }).then(() => true);
      }
      return roster.queue.busy(to.bare) ? roster.queue.drained(to.bare).then(() => false) : false;
    }, PRIORITY);

    ctx.hook('user:removed', async ({ user }) => {
      await roster.accountRemoved(user);
    });
  },
});
