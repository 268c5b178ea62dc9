/**
 * Who may learn about an account through the server's answers on its behalf (disco#info and
 * disco#items to a bare JID, XEP-0030 §8; last activity, XEP-0012 §3; pings to a bare JID):
 * the user themself, and entities the account shares its presence with, i.e. contacts with a
 * subscription of 'from' or 'both' on the account's roster. Everyone else gets the answer a
 * non-existent account would get, so the server leaks neither presence nor existence.
 */
import type { ModuleContext } from '../api.ts';
import type { Jid } from '../../router/jid.ts';

export async function mayViewPresence(ctx: Pick<ModuleContext<unknown>, 'use'>, requester: Jid, owner: Jid): Promise<boolean> {
  if (requester.bare === owner.bare) return true;
  const roster = ctx.use('roster');
  if (roster === undefined) return false;
  const item = await roster.getItem({ username: owner.local, domain: owner.domain }, requester.bare);
  return item !== undefined && (item.subscription === 'from' || item.subscription === 'both');
}
