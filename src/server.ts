/**
 * Assembles a running server from a validated config: storage, router, one Host per virtual
 * domain with its modules, and the listeners. Owns graceful shutdown.
 */
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { modulesForHost, storageOptions } from './config/load.ts';
import { openStorage } from './storage/index.ts';
import type { Storage } from './storage/types.ts';
import { Accounts } from './auth/accounts.ts';
import { Router } from './router/router.ts';
import { Host } from './router/host.ts';
import { installDeliveryRules } from './router/delivery.ts';
import { C2SStream } from './stream/c2s.ts';
import type { StreamEnvironment } from './stream/environment.ts';
import { ResumableSessions } from './stream/resumption.ts';
import type { SmSettings } from './stream/stream-management.ts';
import { TcpListener } from './transports/tcp.ts';
import { loadOrCreateCertificate, secureContext } from './transports/certificates.ts';
import { RateLimiter } from './util/rate-limit.ts';
import { createLogger } from './util/log.ts';

export const SERVER_NAME = 'Meerkat';
export const SERVER_VERSION = '0.1.0';

export interface RunningServer {
  /** Bound ports, in listener order (useful with port 0 in tests). */
  readonly ports: number[];
  readonly router: Router;
  readonly storage: Storage;
  readonly accounts: Accounts;
  /** Open client connections, over every listener. */
  connections(): number;
  /** Close every stream with <system-shutdown/>, flush storage, stop listening. */
  stop(reason?: string): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Install SIGTERM/SIGINT handlers that stop the server and exit (the CLI does). */
  handleSignals?: boolean;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.general.loglevel);
  const { general, auth } = config;
  const storage = await openStorage(storageOptions(config), log);
  const router = new Router(storage, log);
  const streams = new Set<C2SStream>();
  /** Session hooks still running (a session's end writes last activity): shutdown waits for them. */
  const pendingHooks = new Set<Promise<unknown>>();
  const track = (work: boolean | Promise<unknown> | undefined): void => {
    if (!(work instanceof Promise)) return;
    const settled = work.catch((err: unknown) => log.error({ err }, 'session hook failed')).finally(() => pendingHooks.delete(settled));
    pendingHooks.add(settled);
  };
  const serverInfo = { name: SERVER_NAME, version: SERVER_VERSION, startedAt: new Date() };

  const accounts = new Accounts(storage, auth.scram_iterations, {
    created: async (user) => { await router.hosts.get(user.domain)?.hooks.fire('user:created', { user }); },
    removing: async (user) => {
      await router.hosts.get(user.domain)?.hooks.fire('user:removed', { user });
      for (const session of router.sessions.ofUser(user)) session.close('not-authorized', 'account removed');
    },
  });

  for (const domain of general.hosts) {
    const host = new Host(domain, {
      storage,
      accounts,
      log,
      server: serverInfo,
      route: (stanza) => router.route(stanza),
      sessionsOf: (user) => router.sessions.ofUser(user),
      sessionByJid: (jid) => router.sessions.get(jid),
    });
    installDeliveryRules(host, router);
    for (const { definition, config: moduleConfig } of modulesForHost(config, domain)) {
      await host.load(definition, moduleConfig);
    }
    router.hosts.set(domain, host);
  }

  const pems = await loadOrCreateCertificate(
    config.tls.certfile !== undefined && config.tls.keyfile !== undefined ? { certfile: config.tls.certfile, keyfile: config.tls.keyfile } : undefined,
    general.data_dir,
    general.hosts,
    log,
  );
  const minTlsVersion = config.tls.min_version;
  const defaultContext = secureContext(pems, minTlsVersion);
  const saslLimits = {
    maxAttempts: auth.max_attempts,
    failuresByAddress: new RateLimiter({ limit: auth.failures_per_address, windowMs: 60_000, maxKeys: 100_000 }),
    failuresByAccount: new RateLimiter({ limit: auth.failures_per_account, windowMs: 60_000, maxKeys: 100_000 }),
  };

  const sm = config.stream_management;
  const streamManagement: SmSettings = {
    enabled: sm.enabled,
    resumeTimeoutMs: sm.resume_timeout * 1000,
    maxUnacked: sm.max_unacked,
    ackRequestStanzas: sm.ack_request_stanzas,
    ackRequestDelayMs: sm.ack_request_delay * 1000,
  };
  /** XEP-0198 sessions a client may resume through any listener. */
  const resumable = new ResumableSessions<C2SStream>();

  const listeners: TcpListener[] = [];
  const ports: number[] = [];
  for (const listen of config.listen.c2s) {
    const context = listen.tls.certfile !== undefined && listen.tls.keyfile !== undefined
      ? secureContext(await loadOrCreateCertificate({ certfile: listen.tls.certfile, keyfile: listen.tls.keyfile }, general.data_dir, general.hosts, log), minTlsVersion)
      : defaultContext;
    if (listen.tls.mode === 'none') log.warn({ port: listen.port }, 'listener without TLS: use only on loopback for benchmarks');
    const env: StreamEnvironment = {
      hosts: router.hosts,
      defaultDomain: general.hosts[0],
      router,
      storage,
      log,
      tlsRequired: listen.tls.mode === 'starttls_required',
      saslPolicy: { mechanisms: auth.sasl_mechanisms, plainWithoutTls: auth.plain_without_tls },
      saslLimits,
      limits: { authTimeoutMs: listen.auth_timeout * 1000, idleTimeoutMs: listen.idle_timeout * 1000, pingTimeoutMs: listen.ping_timeout * 1000 },
      streamManagement,
      resumable,
      track,
      sessionOpened(stream) {
        const hooks = router.hosts.get(stream.jid.domain)?.hooks;
        const replaced = router.sessions.add(stream);
        if (replaced !== undefined) {
          // The registry already points at the new session, so the old one's own close can't
          // report its end: contacts must still see it go unavailable.
          replaced.close('conflict', 'replaced by a new session with the same resource');
          track(hooks?.fire('session:closed', { session: replaced, clean: false }));
        }
        track(hooks?.fire('session:bound', { session: stream }));
      },
      streamClosed(stream) {
        streams.delete(stream);
      },
      sessionClosed(stream, clean) {
        if (router.sessions.remove(stream)) {
          track(router.hosts.get(stream.jid.domain)?.hooks.fire('session:closed', { session: stream, clean }));
        }
      },
    };
    const listener = new TcpListener(
      {
        port: listen.port,
        address: listen.address,
        tlsMode: listen.tls.mode,
        secureContext: listen.tls.mode === 'none' ? undefined : context,
        minTlsVersion,
        maxConnections: listen.max_connections,
        maxConnectionsPerAddress: listen.max_connections_per_address,
        maxStanzaBytes: listen.max_stanza_size ?? general.max_stanza_size,
        maxDepth: general.max_xml_depth,
        bytesPerSecond: listen.rate_limit.bytes_per_second,
      },
      log,
      (transport) => {
        streams.add(new C2SStream(transport, env));
      },
    );
    ports.push(await listener.listen());
    listeners.push(listener);
  }
  log.info({ hosts: general.hosts, ports }, 'Meerkat started');

  let stopping: Promise<void> | undefined;
  const stop = (reason = 'server shutting down'): Promise<void> => {
    stopping ??= (async () => {
      log.info({ reason }, 'stopping');
      // A listener's close completes only when its last connection is gone: stop accepting
      // first, then end every stream (sessions waiting to be resumed included: what they
      // queued goes to offline storage), then wait.
      const closed = Promise.all(listeners.map((l) => l.close()));
      for (const stream of [...streams]) stream.close('system-shutdown', reason);
      await closed;
      while (pendingHooks.size > 0) await Promise.all(pendingHooks);
      for (const host of router.hosts.values()) await host.stop();
      await storage.close();
      log.info('stopped');
      log.flush?.();
    })();
    return stopping;
  };

  if (options.handleSignals) {
    const onSignal = (signal: string) => {
      const timeout = setTimeout(() => process.exit(1), config.general.shutdown_timeout * 1000);
      timeout.unref();
      stop(`received ${signal}`).then(() => process.exit(0), () => process.exit(1));
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  }

  return { ports, router, storage, accounts, connections: () => listeners.reduce((n, l) => n + l.connections, 0), stop };
}
