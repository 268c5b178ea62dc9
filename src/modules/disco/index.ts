/**
 * XEP-0030 Service Discovery for the server and, on their behalf, for its accounts; XEP-0115
 * entity capabilities of the server as a stream feature.
 *
 * - The server (`to` the domain): every identity and feature the enabled modules registered,
 *   read when answering since modules load in any order. No items yet (MUC and upload will
 *   list their services here). The only info node is the caps node `<caps_node>#<ver>`
 *   (XEP-0115 §6.2); other nodes are <item-not-found/>.
 * - An account (`to` a bare JID): answered by the server (§3.1) only to the user and to
 *   entities that receive the account's presence (§8). Everyone else, and every request about
 *   an account that does not exist, gets disco#info <service-unavailable/> and an empty
 *   disco#items result, so the answers tell neither existence nor availability. disco#items
 *   lists the available resources; account nodes (PEP, later) are <item-not-found/> for now.
 */
import { z } from 'zod';
import { defineModule, type DiscoIdentity } from '../api.ts';
import { el, type XmlElement } from '../../xml/element.ts';
import { StanzaError } from '../../xml/errors.ts';
import type { Jid } from '../../router/jid.ts';
import { mayViewPresence } from './access.ts';
import { capsVer } from './caps.ts';

export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
export const NS_CAPS = 'http://jabber.org/protocol/caps';

const config = z.object({
  caps_node: z.string().min(1).max(1023).default('https://meerkat.invalid')
    .describe("The 'node' of the server's XEP-0115 entity capabilities: a URI naming the software, preferably its homepage."),
}).strict();

function infoQuery(info: { identities: DiscoIdentity[]; features: string[] }, node: string | undefined): XmlElement {
  return el(
    'query',
    { xmlns: NS_DISCO_INFO, node },
    ...info.identities.map((id) => el('identity', { category: id.category, type: id.type, name: id.name })),
    ...info.features.map((feature) => el('feature', { var: feature })),
  );
}

export default defineModule({
  name: 'disco',
  config,
  setup(ctx) {
    for (const target of ['host', 'account'] as const) {
      ctx.addFeature(NS_DISCO_INFO, target);
      ctx.addFeature(NS_DISCO_ITEMS, target);
    }

    // The hash is recomputed only when the registered identities or features change.
    let cache: { key: string; ver: string } | undefined;
    const currentVer = (): string => {
      const { identities, features } = ctx.discoInfo('host');
      const key = JSON.stringify([identities, features]);
      if (cache?.key !== key) cache = { key, ver: capsVer(identities, features) };
      return cache.ver;
    };
    ctx.addStreamFeature(() => el('c', { xmlns: NS_CAPS, hash: 'sha-1', node: ctx.config.caps_node, ver: currentVer() }));

    ctx.handleIq({ xmlns: NS_DISCO_INFO, element: 'query', type: 'get', target: 'host' }, ({ payload }) => {
      const node = payload.attrs.node;
      if (node !== undefined && node !== `${ctx.config.caps_node}#${currentVer()}`) throw new StanzaError('item-not-found');
      return infoQuery(ctx.discoInfo('host'), node);
    });

    ctx.handleIq({ xmlns: NS_DISCO_ITEMS, element: 'query', type: 'get', target: 'host' }, ({ payload }) => {
      if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
      return el('query', { xmlns: NS_DISCO_ITEMS });
    });

    /** May `from` learn about the account `to`? False as well when there is no such account. */
    const visible = async (from: Jid, to: Jid): Promise<boolean> => {
      if (from.bare === to.bare) return true;
      return (await mayViewPresence(ctx, from, to)) && ctx.storage.users.exists({ username: to.local, domain: to.domain });
    };

    ctx.handleIq({ xmlns: NS_DISCO_INFO, element: 'query', type: 'get', target: 'account' }, async ({ from, to, payload }) => {
      if (!(await visible(from, to))) throw new StanzaError('service-unavailable');
      if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
      return infoQuery(ctx.discoInfo('account'), undefined);
    });

    ctx.handleIq({ xmlns: NS_DISCO_ITEMS, element: 'query', type: 'get', target: 'account' }, async ({ from, to, payload }) => {
      const node = payload.attrs.node;
      if (!(await visible(from, to))) return el('query', { xmlns: NS_DISCO_ITEMS, node });
      if (node !== undefined) throw new StanzaError('item-not-found');
      const available = ctx.sessionsOf({ username: to.local, domain: to.domain }).filter((s) => s.presence !== undefined);
      const jids = available.map((s) => s.jid.full).sort();
      return el('query', { xmlns: NS_DISCO_ITEMS }, ...jids.map((jid) => el('item', { jid })));
    });
  },
});
