/**
 * The roster of one host: items, roster pushes, and the server side of presence
 * subscriptions (RFC 6121 §2 and §3). Every change to an account's roster runs in that
 * account's queue (see queue.ts).
 *
 * Subscription stanzas leave with the user's bare JID as 'from' and the contact's bare JID as
 * 'to' (§3.1.2) and go through ctx.route, so a contact on another host of this server, or
 * later on a remote server, is handled the same way as one on this host.
 */
import { el, type XmlElement } from '../../xml/element.ts';
import type { ModuleContext, Session } from '../api.ts';
import type { RosterItem, UserRef } from '../../storage/types.ts';
import type { Jid } from '../../router/jid.ts';
import { KeyedQueue } from '../../util/keyed-queue.ts';
import { hasFrom, hasTo, inbound, NONE, outbound, sameState, type SubscriptionState, type SubscriptionType } from './state.ts';
import { isVisible, itemElement, NS_ROSTER, queryElement, removedElement } from './items.ts';

export interface RosterConfig {
  versioning: boolean;
  max_items: number;
  max_name_length: number;
  max_group_length: number;
  max_groups: number;
}

/** A roster push waiting to be sent: the item (or removal) and the version it produced. */
export interface Push {
  item: XmlElement;
  version: number;
}

export function bareOf(user: UserRef): string {
  return `${user.username}@${user.domain}`;
}

function stateOf(item: RosterItem | undefined): SubscriptionState {
  return item === undefined ? NONE : { subscription: item.subscription, askOut: item.askOut, askIn: item.askIn };
}

function isEmpty(state: SubscriptionState): boolean {
  return state.subscription === 'none' && !state.askOut && !state.askIn;
}

export class Roster {
  readonly queue = new KeyedQueue();
  private readonly ctx: ModuleContext<RosterConfig>;
  private pushIds = 0;

  constructor(ctx: ModuleContext<RosterConfig>) {
    this.ctx = ctx;
  }

  // --- storage and pushes ---------------------------------------------------------------

  /**
   * Store `after` in place of `before` (undefined: delete) and return the push it calls for:
   * none when the user sees no difference (a hidden pending request, an unchanged item)
   * unless `force` (a roster set is always answered by a push, §2.3.2).
   */
  async commit(user: UserRef, before: RosterItem | undefined, after: RosterItem | undefined, force = false): Promise<Push | undefined> {
    const store = this.ctx.storage.roster;
    if (after === undefined) {
      if (before === undefined) return undefined;
      const version = await store.remove(user, before.jid);
      if (version === undefined || !isVisible(before)) return undefined;
      return { item: removedElement(before.jid), version };
    }
    const version = await store.put(user, after);
    if (!isVisible(after)) return undefined;
    const rendered = itemElement(after);
    if (!force && before !== undefined && isVisible(before) && itemElement(before).toString() === rendered.toString()) return undefined;
    return { item: rendered, version };
  }

  /** Roster pushes (§2.1.6) to every session of the account that requested the roster. */
  sendPushes(user: UserRef, pushes: (Push | undefined)[]): void {
    const sessions = this.ctx.sessionsOf(user).filter((s) => s.rosterRequested);
    if (sessions.length === 0) return;
    for (const push of pushes) {
      if (push === undefined) continue;
      const ver = this.ctx.config.versioning ? String(push.version) : undefined;
      for (const session of sessions) {
        session.send(el('iq', { type: 'set', id: `push-${(++this.pushIds).toString(36)}`, to: session.jid.full }, queryElement(ver, push.item.clone())));
      }
    }
  }

  /** Run `work` in the account's queue, then send its pushes (right away). */
  async change(user: UserRef, work: () => Promise<(Push | undefined)[]>): Promise<void> {
    await this.queue.run(bareOf(user), async () => {
      this.sendPushes(user, await work());
    });
  }

  /**
   * For IQ handlers: run `work` in the account's queue, resolve with its result (so the router
   * sends the IQ result), then send the pushes, as RFC 6121 §2.3.2 shows them: after the
   * result. The queue stays held until the pushes are out, so no later change overtakes them.
   */
  changeThenPush<T>(user: UserRef, work: () => Promise<{ result: T; pushes: (Push | undefined)[] }>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      void this.queue.run(bareOf(user), async () => {
        let outcome: { result: T; pushes: (Push | undefined)[] };
        try {
          outcome = await work();
        } catch (err) {
          reject(err);
          return;
        }
        resolve(outcome.result);
        await new Promise((done) => setImmediate(done));
        this.sendPushes(user, outcome.pushes);
      });
    });
  }

  /** The item the state machine moves to, or undefined when the row should go. */
  private nextItem(item: RosterItem | undefined, contact: string, next: SubscriptionState): RosterItem | undefined {
    // A row that only held a pending request the user never accepted goes when it is answered.
    if (isEmpty(next) && (item === undefined || !isVisible(item))) return undefined;
    const after: RosterItem = item === undefined
      ? { jid: contact, subscription: next.subscription, askOut: next.askOut, askIn: next.askIn, groups: [] }
      : { ...item, subscription: next.subscription, askOut: next.askOut, askIn: next.askIn };
    if (!next.askIn) delete after.askInStanza;
    return after;
  }

  // --- presence the subscription protocol sends along -----------------------------------

  private availableSessions(user: UserRef): Session[] {
    return this.ctx.sessionsOf(user).filter((s) => s.presence !== undefined);
  }

  /** The user's current presence from each available resource, to a new subscriber (§3.1.5). */
  sendPresence(user: UserRef, to: string): void {
    for (const session of this.availableSessions(user)) {
      const presence = session.presence!.clone();
      presence.attrs.from = session.jid.full;
      presence.attrs.to = to;
      this.ctx.route(presence);
    }
  }

  /** Unavailable presence from each available resource, to a former subscriber (§3.2.2, §3.3.3). */
  sendUnavailable(user: UserRef, to: string): void {
    for (const session of this.availableSessions(user)) {
      this.ctx.route(el('presence', { type: 'unavailable', from: session.jid.full, to }));
    }
  }

  // --- the user sends a subscription stanza (§3.1.2, §3.1.5, §3.2.2, §3.3.2) ------------

  async outbound(session: Session, stanza: XmlElement, type: SubscriptionType, contact: Jid): Promise<void> {
    const user = session.user;
    const bare = session.jid.bare;
    await this.change(user, async () => {
      const item = await this.ctx.storage.roster.getItem(user, contact.bare);
      const current = stateOf(item);
      const { next, forward } = outbound(type, current);
      let push: Push | undefined;
      if (!sameState(current, next)) push = await this.commit(user, item, this.nextItem(item, contact.bare, next));
      if (forward) {
        const out = stanza.clone();
        out.attrs.from = bare;
        out.attrs.to = contact.bare;
        this.ctx.route(out);
        if (type === 'subscribed') this.sendPresence(user, contact.bare);
        else if (type === 'unsubscribed' && hasFrom(current.subscription)) this.sendUnavailable(user, contact.bare);
      }
      return [push];
    });
  }

  // --- a subscription stanza arrives for a local account (§3.1.3, §3.1.6, §3.2.3, §3.3.3) -

  /**
   * Applies an inbound subscription stanza to `owner`'s roster and, when Appendix A.3 says
   * so, delivers it to the owner's available resources, all in the owner's queue, so that
   * presence routed after it (the contact's presence after 'subscribed') arrives after it.
   */
  async inbound(owner: Jid, stanza: XmlElement, type: SubscriptionType, contact: Jid): Promise<void> {
    const user: UserRef = { username: owner.local, domain: owner.domain };
    await this.change(user, async () => {
      // RFC 6121 §8.5.1: for an account that does not exist, subscription stanzas are ignored
      // (a 'subscribe' too: answering it would tell the sender the account does not exist).
      if (!(await this.ctx.storage.users.exists(user))) return [];
      const item = await this.ctx.storage.roster.getItem(user, contact.bare);
      const current = stateOf(item);
      const { next, forward, autoReply } = inbound(type, current);
      if (autoReply) {
        this.ctx.route(el('presence', { type: 'subscribed', from: owner.bare, to: contact.bare }));
        this.sendPresence(user, contact.bare);
        return [];
      }
      let push: Push | undefined;
      if (!sameState(current, next)) {
        const after = this.nextItem(item, contact.bare, next);
        if (after !== undefined && type === 'subscribe') {
          if (item === undefined && (await this.ctx.storage.roster.get(user)).items.length >= this.ctx.config.max_items) {
            this.ctx.log.info({ user: owner.bare }, 'roster full: subscription request dropped');
            return [];
          }
          after.askInStanza = stanza.toString();
        }
        push = await this.commit(user, item, after);
      }
      if (forward) {
        for (const session of this.ctx.sessionsOf(user)) if (session.interested) session.send(stanza);
      }
      if (type === 'unsubscribe' && hasFrom(current.subscription) && !hasFrom(next.subscription)) {
        this.sendUnavailable(user, contact.bare);
      }
      return [push];
    });
  }

  /** Subscription requests waiting for the user's answer, as received (redelivered at each login). */
  async pendingRequests(user: UserRef): Promise<string[]> {
    const { items } = await this.ctx.storage.roster.get(user);
    return items.filter((i) => i.askIn && i.askInStanza !== undefined).map((i) => i.askInStanza!);
  }

  // --- removing items and accounts (§2.5.2) ---------------------------------------------

  /**
   * Cancel both subscriptions with a contact the way removing the item does: 'unsubscribe'
   * if the user receives (or asked for) the contact's presence, 'unsubscribed' if the
   * contact receives (or asked for) the user's.
   */
  cancelSubscriptions(user: UserRef, item: RosterItem): void {
    const from = bareOf(user);
    if (hasTo(item.subscription) || item.askOut) {
      this.ctx.route(el('presence', { type: 'unsubscribe', from, to: item.jid }));
    }
    if (hasFrom(item.subscription) || item.askIn) {
      this.ctx.route(el('presence', { type: 'unsubscribed', from, to: item.jid }));
      if (hasFrom(item.subscription)) this.sendUnavailable(user, item.jid);
    }
  }

  /** The account is being deleted: every contact learns that both subscriptions ended. */
  async accountRemoved(user: UserRef): Promise<void> {
    await this.queue.run(bareOf(user), async () => {
      const { items } = await this.ctx.storage.roster.get(user);
      for (const item of items) this.cancelSubscriptions(user, item);
      // Nobody is subscribed any more: the account's last unavailable presence (its sessions
      // close next) must not go to the contacts a second time.
      await this.ctx.storage.roster.removeAll(user);
    });
  }

  /** The full roster query of a roster get (§2.2, XEP-0237 / §2.6 versioning). */
  async rosterResult(user: UserRef, clientVer: string | undefined): Promise<XmlElement | undefined> {
    const { version, items } = await this.ctx.storage.roster.get(user);
    if (!this.ctx.config.versioning) return queryElement(undefined, ...items.filter(isVisible).map(itemElement));
    const ver = String(version);
    // Same version: an empty result, and changes (if any) come as pushes (§2.6.3).
    if (clientVer === ver) return undefined;
    return queryElement(ver, ...items.filter(isVisible).map(itemElement));
  }
}

export { NS_ROSTER };
