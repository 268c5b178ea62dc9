/**
 * XEP-0054 vcard-temp, stored by the server.
 *
 * - Own vCard (no `to`, or the user's bare JID): get returns it, or an empty <vCard/> when
 *   none is stored (§3.1); set replaces it whole (§3.2), an empty one removes it. A vCard
 *   larger than `max_size` bytes is refused with <not-acceptable/>.
 * - Another account's vCard (`to` its bare JID): anyone may read it (vCards are public,
 *   §6). No vCard and no such account get the same <service-unavailable/> (§3.3), so nobody
 *   learns which accounts exist. Setting it is <forbidden/> (§3.2).
 */
import { z } from 'zod';
import { defineModule } from '../api.ts';
import { el, XmlElement } from '../../xml/element.ts';
import { StanzaError } from '../../xml/errors.ts';
import type { Jid } from '../../router/jid.ts';
import type { UserRef } from '../../storage/types.ts';
import { parseStoredElement } from '../../xml/stored.ts';

export const NS_VCARD = 'vcard-temp';

const config = z.object({
  max_size: z.number().int().min(1024).max(16 * 1024 * 1024).default(65536)
    .describe('Largest vCard an account may store, in bytes of XML; a larger one is refused with <not-acceptable/>.'),
}).strict();

const userOf = (jid: Jid): UserRef => ({ username: jid.local, domain: jid.domain });

/**
 * The vCard as it will be stored: its own attributes plus the prefix declarations it uses
 * from the enclosing IQ, so the stored text stands on its own.
 */
function standalone(iq: XmlElement, vcard: XmlElement): XmlElement {
  const attrs: Record<string, string> = {};
  for (const [name, value] of Object.entries(iq.attrs)) if (name.startsWith('xmlns:')) attrs[name] = value;
  Object.assign(attrs, vcard.attrs);
  return new XmlElement(vcard.name, attrs, vcard.children);
}

export default defineModule({
  name: 'vcard',
  config,
  setup(ctx) {
    ctx.addFeature(NS_VCARD);
    ctx.addFeature(NS_VCARD, 'account');

    const load = async (user: UserRef): Promise<XmlElement | undefined> => {
      const xml = await ctx.storage.vcards.get(user);
      if (xml === undefined) return undefined;
      const vcard = parseStoredElement(xml);
      if (vcard === undefined) {
        ctx.log.error({ user: `${user.username}@${user.domain}` }, 'stored vCard is not readable XML');
        throw new StanzaError('internal-server-error');
      }
      return vcard;
    };

    ctx.handleIq({ xmlns: NS_VCARD, element: 'vCard', type: 'get', target: 'self' }, async ({ to }) => {
      return (await load(userOf(to))) ?? el('vCard', { xmlns: NS_VCARD });
    });

    ctx.handleIq({ xmlns: NS_VCARD, element: 'vCard', type: 'get', target: 'account' }, async ({ to }) => {
      const vcard = await load(userOf(to));
      if (vcard === undefined) throw new StanzaError('service-unavailable');
      return vcard;
    });

    ctx.handleIq({ xmlns: NS_VCARD, element: 'vCard', type: 'set', target: 'self' }, async ({ stanza, payload, to }) => {
      const user = userOf(to);
      if (payload.getChildren().length === 0 && payload.text().trim() === '') {
        await ctx.storage.vcards.remove(user);
        return;
      }
      const xml = standalone(stanza, payload).toString();
      if (Buffer.byteLength(xml) > ctx.config.max_size) {
        throw new StanzaError('not-acceptable', `a vCard may be at most ${ctx.config.max_size} bytes`);
      }
      await ctx.storage.vcards.set(user, xml);
    });

    ctx.handleIq({ xmlns: NS_VCARD, element: 'vCard', type: 'set', target: 'account' }, () => {
      throw new StanzaError('forbidden', "only the account's owner may change its vCard");
    });
  },
});
