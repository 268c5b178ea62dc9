/**
 * Default delivery to local accounts, RFC 6121 §8.5. Installed at the lowest priority on
 * every host, so modules (presence, blocking, offline storage, carbons) act first and these
 * rules decide only what nobody else handled.
 */
import type { Session } from '../modules/api.ts';
import { StanzaError } from '../xml/errors.ts';
import type { XmlElement } from '../xml/element.ts';
import type { Host } from './host.ts';
import type { Jid } from './jid.ts';
import type { Router } from './router.ts';

const LAST = -1000;

/**
 * Which of an account's sessions get a message sent to its bare JID (RFC 6121 §8.5.2.1):
 * the available ones with non-negative priority; of those, all for a headline, otherwise the
 * highest-priority ones. Empty when none is available. Carbons applies the same rule.
 */
export function bareJidRecipients(sessions: readonly Session[], type: string): Session[] {
  const available = sessions.filter((s) => s.presence !== undefined && s.priority >= 0);
  if (type === 'headline') return available;
  let top = -Infinity;
  for (const s of available) if (s.priority > top) top = s.priority;
  return available.filter((s) => s.priority === top);
}

export function installDeliveryRules(host: Host, router: Router): void {
  /** Synchronous unless no resource is available (offline storage then decides). */
  const messageToBare = (stanza: XmlElement, to: Jid): boolean | Promise<boolean> => {
    const type = stanza.attrs.type ?? 'normal';
    if (type === 'groupchat') {
      router.bounce(stanza, new StanzaError('service-unavailable'));
      return true;
    }
    // RFC 6121 §8.5.2.1.1 and §8.5.2.2.1: an error for the bare JID is silently ignored.
    if (type === 'error') return true;
    const resources = router.sessions.resourcesOf(to.bare);
    const recipients = resources === undefined ? [] : bareJidRecipients([...resources.values()], type);
    if (recipients.length > 0) {
      for (const session of recipients) session.send(stanza);
      return true;
    }
    if (type === 'headline') return true;
    return toUnavailableAccount(stanza, to);
  };

  const toUnavailableAccount = async (stanza: XmlElement, to: Jid): Promise<boolean> => {
    // Offline storage decides for existing accounts; with none, or for an unknown account,
    // the answer is the same error, so a sender cannot tell which (RFC 6121 §8.5.2.2).
    if (await router.accountExists(to)) {
      if (await host.hooks.fire('message:offline', { stanza, to })) return true;
    }
    router.bounce(stanza, new StanzaError('service-unavailable'));
    return true;
  };

  host.hooks.on('message:bare', ({ stanza, to }) => messageToBare(stanza, to), LAST);

  host.hooks.on('message:full', ({ stanza, to }) => {
    const session = router.sessions.get(to);
    if (session !== undefined) {
      session.send(stanza);
      return true;
    }
    // RFC 6121 §8.5.3.2.1, no such resource: a chat message is handled as if sent to the
    // bare JID; normal and groupchat messages get <service-unavailable/> (the sender learns
    // the resource is gone instead of a silent loss); headlines and errors are dropped.
    const type = stanza.attrs.type ?? 'normal';
    if (type === 'chat') return host.hooks.fire('message:bare', { stanza, to: to.toBare() });
    if (type === 'normal' || type === 'groupchat') router.bounce(stanza, new StanzaError('service-unavailable'));
    return true;
  }, LAST);

  host.hooks.on('presence:bare', ({ stanza, to }) => {
    const resources = router.sessions.resourcesOf(to.bare);
    if (resources !== undefined) for (const session of resources.values()) if (session.interested) session.send(stanza);
    return true;
  }, LAST);

  host.hooks.on('presence:full', ({ stanza, to }) => {
    router.sessions.get(to)?.send(stanza);
    return true;
  }, LAST);

  host.hooks.on('message:host', ({ stanza }) => {
    const type = stanza.attrs.type ?? 'normal';
    if (type !== 'error' && type !== 'headline') router.bounce(stanza, new StanzaError('service-unavailable'));
    return true;
  }, LAST);

  host.hooks.on('presence:host', () => true, LAST);
}
