/**
 * XEP-0280 message carbons: every device of a user sees the whole conversation. A resource
 * that enabled carbons gets a `<sent/>` copy of what the user's other resources send and a
 * `<received/>` copy of what arrives for the user at other resources, each wrapped in an
 * XEP-0297 forward whose `from` is the user's bare JID. Which messages: see rules.ts.
 *
 * Hooks and priorities (higher runs first):
 *    500   blocking refuses or drops a message before anything here
 *    100   message:offline: a copy its session could not take is dropped, never stored.
 *  -990   message:bare / message:full: for a copied message to an account that has a
 *         carbons-enabled session, this module delivers it by the same rules as the
 *         default delivery (RFC 6121 §8.5: bare JID → the highest non-negative priority
 *         available resources, `bareJidRecipients`; full JID → that session), so it knows
 *         who got it and copies it to every other enabled session. When nobody can take it
 *         (offline storage, a gone resource) it leaves the message to the default rules and
 *         copies nothing. A module that must see every delivered message (archiving) hooks
 *         above -990.
 *  -1000  message:outbound, last, so copies go out only for a message nothing refused;
 *         on the inbound hooks, the default delivery (src/router/delivery.ts).
 *
 * A message from one of the user's resources to another (or to the user's bare JID) is
 * copied once, on arrival, as `<received/>`: the sending resource gets no copy, the
 * recipient only the message, every other enabled resource one copy.
 *
 * Copies are written straight to the sessions, never routed, so one can never bounce back
 * to the original sender (§9.3). A `<sent/>` or `<received/>` inside a message from anyone
 * else is delivered as is, never copied: clients must ignore a carbon whose `from` is not
 * their own bare JID (§11), and the server never gives its own copies another `from`.
 *
 * Left out: limiting copies of private messages to MUC occupants to the clients joined to
 * that room with the same nick (a footnote SHOULD; needs tracking MUC presence), so
 * `urn:xmpp:carbons:rules:0` is not advertised.
 */
import { z } from 'zod';
import { defineModule, type HookResult, type Session } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError } from '../../xml/errors.ts';
import { tryParseJid, type Jid } from '../../router/jid.ts';
import { bareJidRecipients } from '../../router/delivery.ts';
import { RecentMessages } from './answers.ts';
import { NS_CARBONS, NS_FORWARD, classify, messageType } from './rules.ts';

/** Per session: carbons enabled. */
const ENABLED = 'carbons';
const INBOUND_PRIORITY = -990;
const OUTBOUND_PRIORITY = -1000;
/** message:offline: above offline storage (0). */
const BEFORE_OFFLINE = 100;
/** Messages per account whose error answer would be copied. */
const REMEMBERED = 100;

const enabled = (session: Session): boolean => session.data.get(ENABLED) === true;

/**
 * Accounts (bare JIDs) with carbons-enabled sessions, and how many: most accounts have none,
 * and their messages pass with one map lookup.
 */
class EnabledAccounts {
  private readonly counts = new Map<string, number>();

  has(bare: string): boolean {
    return this.counts.has(bare);
  }

  set(session: Session, on: boolean): void {
    if (enabled(session) === on) return;
    const bare = session.jid.bare;
    const count = (this.counts.get(bare) ?? 0) + (on ? 1 : -1);
    if (count > 0) this.counts.set(bare, count);
    else this.counts.delete(bare);
    if (on) session.data.set(ENABLED, true);
    else session.data.delete(ENABLED);
  }
}

export default defineModule({
  name: 'carbons',
  config: z.object({}).strict(),
  setup(ctx) {
    ctx.addFeature(NS_CARBONS);
    const recent = new RecentMessages(REMEMBERED);
    const accounts = new EnabledAccounts();

    // §4, §5, §9.1: enable and disable any number of times; repeating one is no error.
    for (const action of ['enable', 'disable'] as const) {
      ctx.handleIq({ xmlns: NS_CARBONS, element: action, type: 'set', target: 'self' }, ({ session }) => {
        if (session === undefined) throw new StanzaError('not-allowed', 'carbons are a client session setting');
        // Not for a session already replaced (its session:closed has run): it would stay counted.
        if (ctx.sessionByJid(session.jid) === session) accounts.set(session, action === 'enable');
      });
    }

    /**
     * Should this message be copied? For an error: does it answer a copied message (the
     * peer is whoever the user exchanges messages with)? Remembers a copied message with an
     * id, so that an error answering it is copied too.
     */
    function eligible(stanza: XmlElement, direction: 'sent' | 'received', account: string, peer: Jid | undefined, toFullJid: boolean): boolean {
      const verdict = classify(stanza, direction, toFullJid);
      const id = stanza.attrs.id;
      if (verdict === 'skip') return false;
      if (verdict === 'if-answer') return peer !== undefined && id !== undefined && recent.answers(account, peer.bare, id);
      if (peer !== undefined && id !== undefined) recent.remember(account, peer.bare, id);
      return true;
    }

    // §7: what a resource sends goes to the user's other enabled resources as <sent/>.
    ctx.hook('message:outbound', ({ session, stanza }) => {
      if (!accounts.has(session.jid.bare)) return undefined;
      const to = tryParseJid(stanza.attrs.to);
      // Unroutable (the router answers), or for the user's own account (copied on arrival).
      if (to === undefined || to.bare === session.jid.bare) return undefined;
      if (!eligible(stanza, 'sent', session.jid.bare, to, to.resource !== '')) return undefined;
      for (const other of ctx.sessionsOf(session.user)) {
        if (other !== session && enabled(other)) other.send(carbon('sent', other, stanza));
      }
      return undefined;
    }, OUTBOUND_PRIORITY);

    // §6.2: what arrives for the user goes to the enabled resources that did not get it.
    const inbound = ({ stanza, to }: { stanza: XmlElement; to: Jid }): HookResult => {
      if (!accounts.has(to.bare)) return undefined;
      const type = messageType(stanza);
      // An error for the bare JID is dropped by the delivery rules (RFC 6121 §8.5.2): no copies.
      if (type === 'error' && to.resource === '') return undefined;
      const from = tryParseJid(stanza.attrs.from);
      const own = from !== undefined && from.bare === to.bare;
      if (own ? classify(stanza, 'received', to.resource !== '') !== 'copy' : !eligible(stanza, 'received', to.bare, from, to.resource !== '')) {
        return undefined;
      }
      const sessions = ctx.sessionsOf({ username: to.local, domain: to.domain });
      let recipients: Session[];
      if (to.resource === '') {
        recipients = bareJidRecipients(sessions, type);
        if (recipients.length === 0) return undefined; // offline storage, or the sender's error
      } else {
        const target = sessions.find((session) => session.jid.full === to.full);
        if (target === undefined) return undefined; // the default rules: a chat goes to the bare JID
        recipients = [target];
      }
      for (const session of recipients) session.send(stanza);
      for (const session of sessions) {
        if (!enabled(session) || recipients.includes(session)) continue;
        if (own && session.jid.full === from.full) continue; // the sending resource
        session.send(carbon('received', session, stanza));
      }
      return true;
    };
    ctx.hook('message:bare', inbound, INBOUND_PRIORITY);
    ctx.hook('message:full', inbound, INBOUND_PRIORITY);

    // A copy its session could not take (stream management hands what a dead session left
    // unacknowledged to offline storage) is dropped: the original reached another resource
    // or the contact, and a stored copy would reach a later session as a stale duplicate.
    // (A carbon from anyone else is no copy of ours: it is stored like any message.)
    ctx.hook('message:offline', ({ stanza, to }) => {
      if (stanza.attrs.from !== to.bare) return undefined;
      return stanza.getChildren().some((child) => child.attrs.xmlns === NS_CARBONS && (child.name === 'sent' || child.name === 'received')) || undefined;
    }, BEFORE_OFFLINE);

    ctx.hook('session:closed', ({ session }) => {
      accounts.set(session, false);
      if (ctx.sessionsOf(session.user).length === 0) recent.forget(session.jid.bare);
    });
    ctx.hook('user:removed', ({ user }) => {
      recent.forget(`${user.username}@${user.domain}`);
    });
  },
});

/**
 * The copy for `to`: from the user's bare JID to the resource (§6.2, §7), of the original's
 * type, except that an error's copy is typeless, for a message of type error must carry an
 * <error/> child (RFC 6120 §8.3) and clients would take the copy for a failure of their own.
 */
function carbon(kind: 'sent' | 'received', to: Session, stanza: XmlElement): XmlElement {
  const original = stanza.clone();
  original.attrs.xmlns ??= 'jabber:client';
  const type = stanza.attrs.type === 'error' ? undefined : stanza.attrs.type;
  return el('message', { from: to.jid.bare, to: to.jid.full, type },
    el(kind, { xmlns: NS_CARBONS }, el('forwarded', { xmlns: NS_FORWARD }, original)));
}
