/**
 * @xmpp/client 0.14 (a client nobody here wrote) against a test server.
 *
 * TLS trust: xmpp.js takes no TLS options. Direct TLS gets its CA and server name through a
 * per-instance `socketParameters` override; STARTTLS (upgraded inside xmpp.js with
 * `tls.connect({ socket, host: domain })`) gets them from tls-trust.ts, which adds the running
 * test servers' certificates to connections naming a test domain. Verification stays on.
 *
 * SASL: xmpp.js 0.14 implements SCRAM-SHA-1, PLAIN and ANONYMOUS (and HT-SHA-256-NONE for
 * FAST tokens, over SASL2 only). Left to itself it takes the first of those the server offers
 * (PLAIN only over TLS); `mechanism` forces one.
 */
import { client, xml, type XmppClient } from '@xmpp/client';
import type { Element } from 'ltx';
import { anchorsFor, trustCertificate } from './tls-trust.ts';

export { xml };

export const XMPPJS_MECHANISMS = ['SCRAM-SHA-1', 'PLAIN', 'ANONYMOUS'] as const;
export type XmppJsMechanism = (typeof XMPPJS_MECHANISMS)[number];

export interface XmppJsOptions {
  port: number;
  domain: string;
  username: string;
  password: string;
  resource?: string;
  mechanism?: XmppJsMechanism;
  /** Default 'starttls'. */
  tls?: 'starttls' | 'direct';
  host?: string;
  /** Trust anchor; by default the certificates of the running test servers for `domain`. */
  ca?: string;
  /** xmpp.js's own timeout for each step, ms (default 5000). */
  timeout?: number;
}

export interface XmppJsSession {
  readonly xmpp: XmppClient;
  /** The bound full JID. */
  readonly jid: string;
  /** Every stanza received, oldest first. */
  readonly received: Element[];
  /** Errors xmpp.js emitted. */
  readonly errors: Error[];
  send(stanza: Element): Promise<void>;
  /** The first received stanza satisfying `predicate` not returned before (waits if needed). */
  waitFor(predicate: (stanza: Element) => boolean, options?: { timeout?: number }): Promise<Element>;
  stop(): Promise<void>;
}

/** Connect, authenticate and bind; rejects if any step fails. */
export async function connectXmppJs(options: XmppJsOptions): Promise<XmppJsSession> {
  const host = options.host ?? '127.0.0.1';
  const direct = options.tls === 'direct';
  const credentials = { username: options.username, password: options.password };
  const forced = options.mechanism;
  const xmpp = client({
    service: `${direct ? 'xmpps' : 'xmpp'}://${host}:${options.port}`,
    domain: options.domain,
    resource: options.resource,
    timeout: options.timeout ?? 5000,
    ...(forced === undefined
      ? credentials
      : {
          credentials: async (authenticate, offered) => {
            if (!offered.includes(forced)) throw new Error(`server does not offer ${forced} (xmpp.js can use: ${offered.join(', ')})`);
            await authenticate(credentials, forced);
          },
        }),
  });
  xmpp.reconnect.stop();
  const release = options.ca === undefined ? () => undefined : trustCertificate(options.ca, [options.domain]);
  if (direct) {
    const base = xmpp.socketParameters.bind(xmpp);
    xmpp.socketParameters = (service) => {
      const params = base(service);
      return params && { ...params, servername: options.domain, ca: options.ca ?? anchorsFor(options.domain) };
    };
  }

  const received: Element[] = [];
  const unseen: Element[] = [];
  const errors: Error[] = [];
  const waiters = new Set<() => void>();
  xmpp.on('error', (err: Error) => errors.push(err));
  xmpp.on('stanza', (stanza: Element) => {
    received.push(stanza);
    unseen.push(stanza);
    for (const wake of [...waiters]) wake();
  });

  let jid: string;
  try {
    jid = (await xmpp.start()).toString();
  } catch (err) {
    await xmpp.stop().catch(() => undefined);
    release();
    throw err;
  }

  return {
    xmpp,
    jid,
    received,
    errors,
    send: (stanza) => xmpp.send(stanza),
    waitFor(predicate, { timeout = 5000 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const index = unseen.findIndex(predicate);
          if (index < 0) return false;
          const [stanza] = unseen.splice(index, 1);
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(stanza);
          return true;
        };
        const wake = () => void check();
        const timer = setTimeout(() => {
          waiters.delete(wake);
          const log = received.map((s) => `  ${s.toString()}`).join('\n');
          reject(new Error(`[xmpp.js ${jid}] timed out after ${timeout}ms waiting for a stanza; received:\n${log}`));
        }, timeout);
        if (!check()) waiters.add(wake);
      });
    },
    async stop() {
      try {
        await xmpp.stop();
      } finally {
        release();
      }
    },
  };
}
