/**
 * XEP-0199 XMPP Ping, answered by the server: to the domain, with no `to`, and to an account's
 * bare JID (§4.2, §4.4: "a ping sent to a bare JID will be handled by the server on behalf of
 * the client"). A pong for a bare JID says the account exists, so it goes only to the user and
 * to entities that receive the account's presence; anyone else gets <service-unavailable/>,
 * the answer for an account that does not exist (RFC 6121 §8.5.1). Pings to full JIDs are
 * routed to the client; the server's own pings to idle clients live in the c2s stream.
 */
import { z } from 'zod';
import { defineModule } from '../api.ts';
import { StanzaError } from '../../xml/errors.ts';
import { mayViewPresence } from '../disco/access.ts';

export const NS_PING = 'urn:xmpp:ping';

export default defineModule({
  name: 'ping',
  config: z.object({}).strict(),
  setup(ctx) {
    ctx.addFeature(NS_PING);
    ctx.handleIq({ xmlns: NS_PING, element: 'ping', type: 'get', target: 'host' }, () => undefined);
    ctx.handleIq({ xmlns: NS_PING, element: 'ping', type: 'get', target: 'account' }, async ({ from, to }) => {
      if (from.bare === to.bare) return;
      const known = (await mayViewPresence(ctx, from, to)) && (await ctx.storage.users.exists({ username: to.local, domain: to.domain }));
      if (!known) throw new StanzaError('service-unavailable');
    });
  },
});
