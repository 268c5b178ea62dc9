/**
 * XEP-0012 Last Activity.
 *
 * - To the server: its uptime in seconds (§5).
 * - To an account's bare JID, answered by the server (§3): 0 seconds while the user has a
 *   connected resource, otherwise the seconds since their last session ended, with the status
 *   text of the last unavailable presence they broadcast. Recorded when the user's last
 *   session closes. Only the user and entities that receive the account's presence may ask;
 *   anyone else gets <forbidden/> (§3, §8). A request about an account that does not exist
 *   gets <forbidden/> too: nobody can hold a subscription to it, and a distinct answer would
 *   tell who has an account. An account that never logged out has no record: <item-not-found/>.
 * - To a full JID (§4): delivered to the resource only for the same people; others get
 *   <forbidden/> from the server, before delivery, whether or not the resource is online.
 */
import { z } from 'zod';
import { defineModule, type HookResult } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError, errorReply } from '../../xml/errors.ts';
import { tryParseJid, type Jid } from '../../router/jid.ts';
import type { LastActivity, UserRef } from '../../storage/types.ts';
import { WriteQueue } from '../../storage/write-queue.ts';
import { mayViewPresence } from '../disco/access.ts';

export const NS_LAST = 'jabber:iq:last';

/** Session data key: status text of the last unavailable presence the session broadcast. */
const STATUS = 'last:status';
/** Longest status text kept. */
const MAX_STATUS = 1024;
/** Below blocking (500): a blocked requester gets blocking's answer. */
const PRIORITY = 100;

function query(seconds: number, status?: string): XmlElement {
  return el('query', { xmlns: NS_LAST, seconds: String(seconds) }, status || undefined);
}

export default defineModule({
  name: 'last',
  config: z.object({}).strict(),
  setup(ctx) {
    ctx.addFeature(NS_LAST);
    ctx.addFeature(NS_LAST, 'account');

    ctx.handleIq({ xmlns: NS_LAST, element: 'query', type: 'get', target: 'host' }, () => {
      return query(Math.max(0, Math.floor((Date.now() - ctx.server.startedAt.getTime()) / 1000)));
    });

    ctx.handleIq({ xmlns: NS_LAST, element: 'query', type: 'get', target: 'account' }, async ({ from, to }) => {
      if (!(await mayViewPresence(ctx, from, to))) throw new StanzaError('forbidden');
      const user = { username: to.local, domain: to.domain };
      if (ctx.sessionsOf(user).length > 0) return query(0);
      const last = unwritten.get(keyOf(user)) ?? await ctx.storage.lastActivity.get(user);
      if (last === undefined) throw new StanzaError('item-not-found', 'no activity recorded');
      return query(Math.max(0, Math.floor(Date.now() / 1000 - last.timestamp)), last.status);
    });

    // §4: to a resource of someone else's account, only if they may see the user's presence.
    ctx.hook('iq:full', ({ stanza, to }): HookResult | Promise<HookResult> => {
      if (stanza.attrs.type !== 'get') return;
      const payload = stanza.firstElement();
      if (payload?.name !== 'query' || payload.attrs.xmlns !== NS_LAST) return;
      const from = tryParseJid(stanza.attrs.from);
      if (from === undefined) return;
      return refuseUnlessAllowed(stanza, from, to.toBare());
    }, PRIORITY);

    async function refuseUnlessAllowed(stanza: XmlElement, from: Jid, owner: Jid): Promise<HookResult> {
      if (await mayViewPresence(ctx, from, owner)) return;
      ctx.route(errorReply(stanza, new StanzaError('forbidden')));
      return true;
    }

    // The status of the last broadcast unavailable presence; an available one clears it.
    ctx.hook('presence:outbound', ({ session, stanza }) => {
      if (stanza.attrs.to !== undefined) return;
      const type = stanza.attrs.type;
      if (type === 'unavailable') session.data.set(STATUS, (stanza.getChildText('status') ?? '').slice(0, MAX_STATUS));
      else if (type === undefined) session.data.delete(STATUS);
    }, 1000);

    // Logouts come in bursts (a ward's shift change, a network outage): their records share
    // transactions (gathered for up to 200 ms), and a query meanwhile sees the record not yet
    // written.
    const writes = new WriteQueue<{ owner: UserRef; activity: LastActivity }>({
      write: (batch) => ctx.storage.lastActivity.setMany(batch),
      lingerMs: 200,
      log: ctx.log,
      name: 'last',
    });
    const unwritten = new Map<string, LastActivity>();
    const keyOf = (user: UserRef) => `${user.username}@${user.domain}`;
    ctx.hook('session:closed', ({ session }) => {
      if (ctx.sessionsOf(session.user).length > 0) return;
      const status = session.data.get(STATUS);
      const activity = { timestamp: Math.floor(Date.now() / 1000), status: typeof status === 'string' ? status : '' };
      const key = keyOf(session.user);
      unwritten.set(key, activity);
      writes.enqueue({ owner: session.user, activity })
        .catch((err: unknown) => ctx.log.warn({ err }, 'last activity not recorded'))
        .finally(() => { if (unwritten.get(key) === activity) unwritten.delete(key); });
    });
    // An account being removed has its data deleted after its sessions close: forget it here too.
    ctx.hook('user:removed', ({ user }) => {
      unwritten.delete(keyOf(user));
    });
    ctx.onStop(() => writes.close());
  },
});
