/**
 * XEP-0191 Blocking Command: the block list protocol (blocklist / block / unblock, with
 * pushes to the sessions that asked for the list) and its enforcement on every stanza.
 *
 * Enforcement (XEP-0191 §3.3, JID matching of §6 as in XEP-0016):
 * - to the user from a blocked JID: presence is dropped; messages (but errors and headlines)
 *   and IQ get/set are answered with <service-unavailable/>, as if the account were offline;
 *   IQ results and errors are dropped;
 * - from the user's client to a blocked JID: refused with <not-acceptable/> and
 *   <blocked xmlns='urn:xmpp:blocking:errors'/> (errors and IQ results are dropped);
 * - stanzas the server emits on the user's behalf (presence broadcasts and probes, PEP
 *   notifications) towards a blocked JID are dropped where they arrive, except errors and
 *   unavailable presence.
 * The user's own resources and the server itself are never blocked.
 *
 * Presence (§3.3, §3.4): blocking a JID that receives the user's presence sends it unavailable
 * presence from each available resource; unblocking sends the current presence again.
 */
import { z } from 'zod';
import { defineModule, type HookResult, type Session } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError, errorReply } from '../../xml/errors.ts';
import { JidError, parseJid, tryParseJid, type Jid } from '../../router/jid.ts';
import type { Storage, UserRef } from '../../storage/types.ts';
import { BlockLists, listBlocks, type BlockList } from './lists.ts';

export const NS_BLOCKING = 'urn:xmpp:blocking';
export const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';

/** Above the presence, offline and carbons modules, far above the delivery rules. */
const PRIORITY = 500;

/** Per session: has it requested the block list (and so receives pushes)? */
const WANTS_PUSHES = 'blocking';

/**
 * The lists of every host of one server, so a stanza emitted for a user of one host can be
 * checked against that user's list where it arrives on another host.
 */
const listsByServer = new WeakMap<Storage, Map<string, BlockLists>>();

const config = z.object({
  max_items: z.number().int().min(1).max(100_000).default(1000)
    .describe('Most JIDs one account may block; a block command that would exceed it is refused with <policy-violation/>.'),
}).strict();

function userOf(jid: Jid): UserRef {
  return { username: jid.local, domain: jid.domain };
}

function blockedError(): StanzaError {
  return new StanzaError('not-acceptable', undefined, { type: 'cancel', appCondition: el('blocked', { xmlns: NS_BLOCKING_ERRORS }) });
}

/** Normalised JIDs of a block or unblock command's items (bad-request / jid-malformed). */
function itemJids(payload: XmlElement): string[] {
  const jids: string[] = [];
  for (const child of payload.getChildren()) {
    if (child.name !== 'item' || (child.attrs.xmlns !== undefined && child.attrs.xmlns !== NS_BLOCKING)) continue;
    const raw = child.attrs.jid;
    if (raw === undefined || raw === '') throw new StanzaError('bad-request', 'every item needs a jid attribute');
    try {
      jids.push(parseJid(raw).full);
    } catch (err) {
      if (err instanceof JidError) throw new StanzaError('jid-malformed', `not a valid JID: ${raw}`);
      throw err;
    }
  }
  return [...new Set(jids)];
}

function itemsElement(name: string, jids: readonly string[]): XmlElement {
  return el(name, { xmlns: NS_BLOCKING }, ...jids.map((jid) => el('item', { jid })));
}

export default defineModule({
  name: 'blocking',
  config,
  setup(ctx) {
    const lists = new BlockLists(ctx.storage.blocklist, (user) => ctx.sessionsOf(user).length > 0);
    let hostLists = listsByServer.get(ctx.storage);
    if (hostLists === undefined) {
      hostLists = new Map();
      listsByServer.set(ctx.storage, hostLists);
    }
    const registry = hostLists;
    registry.set(ctx.host, lists);
    ctx.onStop(() => {
      registry.delete(ctx.host);
    });

    ctx.addFeature(NS_BLOCKING);
    ctx.provide('blocking', {
      isBlocked: async (owner, jid) => lists.blocks(owner, jid),
    });

    // --- the protocol ------------------------------------------------------------------

    ctx.handleIq({ xmlns: NS_BLOCKING, element: 'blocklist', type: 'get', target: 'self' }, async ({ from, session }) => {
      const list = await lists.get(userOf(from));
      session?.data.set(WANTS_PUSHES, true);
      return itemsElement('blocklist', [...list].sort());
    });

    ctx.handleIq({ xmlns: NS_BLOCKING, element: 'block', type: 'set', target: 'self' }, async ({ from, payload }) => {
      const jids = itemJids(payload);
      if (jids.length === 0) throw new StanzaError('bad-request', 'a block command needs at least one item');
      const user = userOf(from);
      const { before, after } = await lists.change(user, async (current) => {
        const added = jids.filter((jid) => !current.has(jid));
        if (current.size + added.length > ctx.config.max_items) {
          throw new StanzaError('policy-violation', `a block list holds at most ${ctx.config.max_items} JIDs`);
        }
        if (added.length === 0) return { result: { before: current, after: current } };
        await ctx.storage.blocklist.add(user, added);
        const list = new Set(current);
        for (const jid of added) list.add(jid);
        return { list, result: { before: current, after: list as BlockList } };
      });
      // After the result (XEP-0191 §3.3 shows the result first), the pushes and presence.
      setImmediate(() => {
        push(user, itemsElement('block', jids));
        void presenceOnChange(user, before, after, 'block').catch((err: unknown) => ctx.log.error({ err }, 'blocking: presence update failed'));
      });
    });

    ctx.handleIq({ xmlns: NS_BLOCKING, element: 'unblock', type: 'set', target: 'self' }, async ({ from, payload }) => {
      const jids = itemJids(payload);
      const user = userOf(from);
      const { before, after } = await lists.change(user, async (current) => {
        if (jids.length === 0) {
          if (current.size > 0) await ctx.storage.blocklist.remove(user);
          return { list: new Set<string>(), result: { before: current, after: new Set<string>() as BlockList } };
        }
        const removed = jids.filter((jid) => current.has(jid));
        if (removed.length === 0) return { result: { before: current, after: current } };
        await ctx.storage.blocklist.remove(user, removed);
        const list = new Set(current);
        for (const jid of removed) list.delete(jid);
        return { list, result: { before: current, after: list as BlockList } };
      });
      setImmediate(() => {
        push(user, itemsElement('unblock', jids));
        void presenceOnChange(user, before, after, 'unblock').catch((err: unknown) => ctx.log.error({ err }, 'blocking: presence update failed'));
      });
    });

    /** XEP-0191 §3.3/§3.4 pushes, to the sessions that requested the block list. */
    function push(user: UserRef, payload: XmlElement): void {
      let n = 0;
      for (const session of ctx.sessionsOf(user)) {
        if (session.data.get(WANTS_PUSHES) !== true) continue;
        session.send(el('iq', { type: 'set', id: `block-push-${Date.now().toString(36)}-${++n}`, to: session.jid.full }, payload.clone()));
      }
    }

    /**
     * Contacts that receive the user's presence and whose blocked state changed: a block sends
     * them unavailable presence, an unblock the current presence, from each available resource.
     */
    async function presenceOnChange(user: UserRef, before: BlockList, after: BlockList, change: 'block' | 'unblock'): Promise<void> {
      if (before === after) return;
      const available = ctx.sessionsOf(user).filter((s) => s.presence !== undefined);
      const roster = ctx.use('roster');
      if (available.length === 0 || roster === undefined) return;
      const subscribers = await roster.presenceSubscribers(user);
      // Presence goes to a subscriber's bare JID, or to one full JID when only that resource is blocked.
      const targets = new Set<string>();
      const items = change === 'block' ? [...after].filter((j) => !before.has(j)) : [...before].filter((j) => !after.has(j));
      for (const subscriber of subscribers) {
        const contact = tryParseJid(subscriber);
        if (contact === undefined) continue;
        for (const item of items) {
          const itemJid = tryParseJid(item);
          if (itemJid === undefined) continue;
          if (itemJid.resource === '' ? listBlocks(new Set([item]), contact) : itemJid.bare === contact.bare) {
            targets.add(itemJid.resource === '' ? contact.bare : itemJid.full);
          }
        }
      }
      for (const target of targets) {
        const jid = tryParseJid(target)!;
        // Already hidden (block) or still hidden (unblock) by another item: nothing changes for it.
        if (listBlocks(change === 'block' ? before : after, jid)) continue;
        for (const session of available) {
          const stanza = change === 'block'
            ? el('presence', { type: 'unavailable' })
            : session.presence!.clone();
          stanza.attrs.from = session.jid.full;
          stanza.attrs.to = target;
          delete stanza.attrs.id;
          ctx.route(stanza);
        }
      }
    }

    // --- enforcement -------------------------------------------------------------------

    /** The server itself (and its components' bare domains here) is never blocked. */
    const isServer = (jid: Jid) => jid.local === '' && jid.domain === ctx.host;

    /** From the user's client to a blocked JID: refuse. */
    function outbound({ session, stanza }: { session: Session; stanza: XmlElement }): HookResult | Promise<HookResult> {
      const rawTo = stanza.attrs.to;
      if (rawTo === undefined) return; // broadcast presence, or an IQ to the server
      const to = tryParseJid(rawTo);
      if (to === undefined || to.bare === session.jid.bare || isServer(to)) return;
      const blocked = lists.blocksFor(session.jid, to);
      if (blocked === false) return;
      const refuse = (yes: boolean): HookResult => {
        if (!yes) return;
        const type = stanza.attrs.type;
        if (type !== 'error' && !(stanza.name === 'iq' && type === 'result')) session.send(errorReply(stanza, blockedError()));
        return true;
      };
      return blocked === true ? refuse(true) : blocked.then(refuse);
    }

    /** To a local account: from a blocked JID, or emitted by the server for someone who blocks the recipient. */
    function inbound({ stanza, to }: { stanza: XmlElement; to: Jid }): HookResult | Promise<HookResult> {
      const from = tryParseJid(stanza.attrs.from);
      if (from === undefined || from.bare === to.bare) return;
      const byRecipient = isServer(from) ? false : lists.blocksFor(to, from);
      const type = stanza.attrs.type;
      const senderLists = from.local === '' || type === 'error' || (stanza.name === 'presence' && type === 'unavailable')
        ? undefined
        : registry.get(from.domain);
      const bySender = senderLists === undefined ? false : senderLists.blocksFor(from, to);
      if (byRecipient === false && bySender === false) return;
      if (typeof byRecipient === 'boolean' && typeof bySender === 'boolean') return decide(stanza, byRecipient, bySender);
      return Promise.all([byRecipient, bySender]).then(([r, s]) => decide(stanza, r, s));
    }

    function decide(stanza: XmlElement, byRecipient: boolean, bySender: boolean): HookResult {
      if (byRecipient) {
        const type = stanza.attrs.type ?? (stanza.name === 'message' ? 'normal' : undefined);
        const answer = stanza.name === 'message'
          ? type !== 'error' && type !== 'headline'
          : stanza.name === 'iq' && (type === 'get' || type === 'set');
        if (answer) ctx.route(errorReply(stanza, new StanzaError('service-unavailable')));
        return true;
      }
      return bySender;
    }

    ctx.hook('message:outbound', outbound, PRIORITY);
    ctx.hook('presence:outbound', outbound, PRIORITY);
    ctx.hook('iq:outbound', outbound, PRIORITY);
    ctx.hook('message:bare', inbound, PRIORITY);
    ctx.hook('message:full', inbound, PRIORITY);
    ctx.hook('presence:bare', inbound, PRIORITY);
    ctx.hook('presence:full', inbound, PRIORITY);
    ctx.hook('iq:bare', inbound, PRIORITY);
    ctx.hook('iq:full', inbound, PRIORITY);

    // --- keeping lists of online accounts in memory -------------------------------------

    ctx.hook('session:bound', ({ session }) => {
      lists.pin(session.user);
    });
    ctx.hook('session:closed', ({ session }) => {
      if (ctx.sessionsOf(session.user).length === 0) lists.forget(session.user);
    });
    ctx.hook('user:removed', ({ user }) => {
      lists.forget(user);
    });
  },
});
