/** Scripted clients pointed at a test server's listeners, trusting its certificate. */
import { ScriptedClient, type LoginOptions, type ScriptedConnectOptions } from './scripted-client.ts';
import { portOf, type ListenerKind } from './test-config.ts';

export interface ClientOptions extends Partial<Omit<ScriptedConnectOptions, 'port' | 'tls'>> {
  /** Which listener to use (default: the first). */
  listener?: ListenerKind;
}

export type SessionOptions = ClientOptions & LoginOptions & { resource?: string };

export interface ClientFactory {
  /** A scripted client connected (and TLS-negotiated) to a listener, verifying the certificate. */
  connect(options?: ClientOptions): Promise<ScriptedClient>;
  /** connect + login + bind: a ready session. `user` is `name` or `name@domain`. */
  login(user: string, password: string, options?: SessionOptions): Promise<ScriptedClient>;
  /** Drop every client made here (at server stop). */
  destroyAll(): void;
}

const TLS_OF: Record<ListenerKind, ScriptedConnectOptions['tls']> = {
  starttls: 'starttls', 'starttls-optional': 'starttls', direct: 'direct', plain: 'none',
};

export function clientFactory(target: { hosts: string[]; kinds: ListenerKind[]; ports: number[]; certificate: string }): ClientFactory {
  const clients = new Set<ScriptedClient>();
  const factory: ClientFactory = {
    async connect(options = {}) {
      const kind = options.listener ?? target.kinds[0];
      const client = await ScriptedClient.connect({
        domain: target.hosts[0],
        ca: target.certificate,
        ...options,
        port: portOf(target.kinds, target.ports, kind),
        tls: TLS_OF[kind],
      });
      clients.add(client);
      return client;
    },
    async login(user, password, options = {}) {
      const at = user.indexOf('@');
      const username = at < 0 ? user : user.slice(0, at);
      const domain = at < 0 ? options.domain ?? target.hosts[0] : user.slice(at + 1);
      const client = await factory.connect({ name: user, ...options, domain });
      await client.login(username, password, options);
      await client.bind(options.resource);
      return client;
    },
    destroyAll() {
      for (const client of clients) client.destroy();
      clients.clear();
    },
  };
  return factory;
}
