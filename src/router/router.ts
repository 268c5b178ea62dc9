import type { Logger } from 'pino';
import { el, type XmlElement } from '../xml/element.ts';
import { StanzaError, errorReply } from '../xml/errors.ts';
import type { IqHandler, Session } from '../modules/api.ts';
import type { Storage } from '../storage/types.ts';
import type { Host } from './host.ts';
import type { DeliveryGate } from './hooks.ts';
import { type Jid, tryParseJid } from './jid.ts';
import { SessionRegistry } from './sessions.ts';

/**
 * Delivers every stanza: to the hooks of the local host it is addressed to, to IQ handlers,
 * or back to its sender as an error. There is no server-to-server link yet, so a foreign
 * domain is answered with <remote-server-not-found/>.
 */
export class Router {
  readonly sessions = new SessionRegistry();
  readonly hosts = new Map<string, Host>();
  private readonly log: Logger;
  private readonly storage: Storage;

  constructor(storage: Storage, log: Logger) {
    this.storage = storage;
    this.log = log;
  }

  /**
   * Route a stanza whose `from` is trustworthy (stamped by a stream or set by the server).
   * Returns a promise only when delivery went asynchronous (a hook awaited storage or the
   * gate). A stream passes a gate with its client's messages, so that they are delivered in
   * the order they were sent (RFC 6120 §10.1) while their archive writes overlap (HookBus).
   */
  route(stanza: XmlElement, gate?: DeliveryGate): void | Promise<void> {
    const to = tryParseJid(stanza.attrs.to);
    if (to === undefined) {
      this.bounce(stanza, new StanzaError('jid-malformed'));
      return;
    }
    const host = this.hosts.get(to.domain);
    if (host === undefined) {
      this.bounce(stanza, new StanzaError('remote-server-not-found'));
      return;
    }
    return this.guard(stanza, this.deliverLocal(host, stanza, to, gate));
  }

  /**
   * An IQ from a local client or the server. `to` undefined means "no to attribute": the
   * server answers on behalf of the sender's account (RFC 6120 §10.3.3). Returns a promise
   * while the answer is not out yet (a handler awaits storage): the sending stream waits for
   * it, so an IQ counts as handled (XEP-0198) only once it has been answered.
   */
  dispatchIq(stanza: XmlElement, from: Jid, to: Jid | undefined, session: Session | undefined): void | Promise<void> {
    const host = this.hosts.get(to?.domain ?? from.domain);
    if (host === undefined) {
      this.bounce(stanza, new StanzaError('remote-server-not-found'));
      return;
    }
    // An IQ for someone else's account passes that host's hooks first (blocking).
    if (to !== undefined && to.local !== '' && to.bare !== from.bare) {
      const handled = host.hooks.fire(to.resource === '' ? 'iq:bare' : 'iq:full', { stanza, to });
      if (handled === true) return;
      if (handled !== false) {
        return this.guard(stanza, handled.then(async (done) => {
          if (!done) await this.answerIq(host, stanza, from, to, session);
          return true;
        }));
      }
    }
    return this.answerIq(host, stanza, from, to, session);
  }

  private answerIq(host: Host, stanza: XmlElement, from: Jid, to: Jid | undefined, session: Session | undefined): void | Promise<void> {
    const type = stanza.attrs.type;
    if (to !== undefined && to.resource !== '') {
      this.deliverToFullJid(stanza, to);
      return;
    }
    // Replies addressed to the server or an account belong to requests the server made; the
    // stream that sent the request consumes them before they get here.
    if (type === 'result' || type === 'error') return;
    if (type !== 'get' && type !== 'set') {
      this.bounce(stanza, new StanzaError('bad-request', 'IQ type must be get, set, result or error'));
      return;
    }
    const payloads = stanza.getChildren();
    if (payloads.length !== 1) {
      this.bounce(stanza, new StanzaError('bad-request', 'an IQ get or set carries exactly one payload'));
      return;
    }
    const payload = payloads[0];
    let handler: IqHandler | undefined;
    let target: Jid;
    if (to === undefined || (to.local !== '' && to.bare === from.bare)) {
      handler = host.iqHandler('self', type, payload) ?? host.iqHandler('account', type, payload);
      if (handler === undefined && to === undefined) handler = host.iqHandler('host', type, payload);
      target = to ?? from.toBare();
    } else if (to.local === '') {
      handler = host.iqHandler('host', type, payload);
      target = to;
    } else {
      handler = host.iqHandler('account', type, payload);
      target = to;
    }
    if (handler === undefined) {
      this.bounce(stanza, new StanzaError('service-unavailable'));
      return;
    }
    return this.runIqHandler(handler, stanza, payload, from, target, session);
  }

  private runIqHandler(handler: IqHandler, stanza: XmlElement, payload: XmlElement, from: Jid, to: Jid, session: Session | undefined): void | Promise<void> {
    const reply = (result: XmlElement | void) => {
      const response = el('iq', { type: 'result', id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from }, result ?? undefined);
      // An IQ without `to` was answered for the sender's own account: the result has no
      // `from` either (RFC 6120 §10.3.3), so it cannot be routed; it goes straight back.
      if (response.attrs.from === undefined) session?.send(response);
      else this.route(response);
    };
    const fail = (err: unknown) => {
      if (!(err instanceof StanzaError)) this.log.error({ err, xmlns: payload.attrs.xmlns }, 'IQ handler failed');
      this.bounce(stanza, err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
    };
    try {
      const result = handler({ stanza, payload, from, to, session });
      if (result instanceof Promise) return result.then(reply, fail).catch((err: unknown) => this.log.error({ err }, 'IQ answer failed'));
      reply(result);
    } catch (err) {
      fail(err);
    }
  }

  private deliverLocal(host: Host, stanza: XmlElement, to: Jid, gate?: DeliveryGate): boolean | Promise<boolean> {
    switch (stanza.name) {
      case 'message':
        if (to.local === '') return host.hooks.fire('message:host', { stanza }, gate);
        return host.hooks.fire(to.resource === '' ? 'message:bare' : 'message:full', { stanza, to }, gate);
      case 'presence':
        if (to.local === '') return host.hooks.fire('presence:host', { stanza });
        return to.resource === '' ? host.hooks.fire('presence:bare', { stanza, to }) : host.hooks.fire('presence:full', { stanza, to });
      case 'iq': {
        const from = tryParseJid(stanza.attrs.from);
        if (from === undefined) return true;
        void this.dispatchIq(stanza, from, to, undefined);
        return true;
      }
      default:
        return true;
    }
  }

  deliverToFullJid(stanza: XmlElement, to: Jid): void {
    const session = this.sessions.get(to);
    if (session !== undefined) session.send(stanza);
    else if (stanza.name === 'iq') this.bounce(stanza, new StanzaError('service-unavailable'));
  }

  /** Answer a stanza with an error, unless it is itself an error (no error loops). */
  bounce(stanza: XmlElement, error: StanzaError): void {
    if (stanza.attrs.type === 'error' || stanza.attrs.from === undefined) return;
    const reply = errorReply(stanza, error);
    const to = tryParseJid(reply.attrs.to);
    if (to === undefined) return;
    if (to.resource !== '') {
      this.sessions.get(to)?.send(reply);
      return;
    }
    const host = this.hosts.get(to.domain);
    if (host !== undefined) this.guard(reply, this.deliverLocal(host, reply, to));
  }

  async accountExists(jid: Jid): Promise<boolean> {
    return this.storage.users.exists({ username: jid.local, domain: jid.domain });
  }

  /** Hook chains may be async; a failure there must not leave the sender without an answer. */
  private guard(stanza: XmlElement, result: boolean | Promise<boolean>): void | Promise<void> {
    if (!(result instanceof Promise)) return;
    return result.then(() => undefined, (err: unknown) => {
      this.log.error({ err, stanza: stanza.name }, 'delivery failed');
      this.bounce(stanza, err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
    });
  }
}

