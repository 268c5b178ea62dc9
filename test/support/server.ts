/**
 * A real Meerkat server for integration tests, in this process: temporary data folder and
 * SQLite file, loopback listeners on ephemeral ports, accounts provisioned straight into
 * storage. Logs are kept in memory (`logs`); MEERKAT_TEST_LOG=debug (or info, warn...) sets
 * the level and echoes them to stderr. MEERKAT_TEST_KEEP=1 keeps the data folder.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { createLogger } from '../../src/util/log.ts';
import { buildTestConfig, portOf, type ListenerKind, type TestConfigOptions } from './test-config.ts';
import { trustCertificate } from './tls-trust.ts';
import { clientFactory, type ClientFactory } from './clients.ts';
import { createAccount, type TestUser } from './accounts.ts';
import { postgresQuery } from './storage-backends.ts';

export type { ListenerKind } from './test-config.ts';
export { startServerProcess, type ServerProcess, type ServerProcessOptions } from './server-process.ts';

export interface TestServerOptions extends TestConfigOptions {
  /** Replaces the captured logger. */
  log?: Logger;
}

export type { TestUser } from './accounts.ts';

export type { ClientOptions, SessionOptions } from './clients.ts';

export interface TestServer extends Omit<ClientFactory, 'destroyAll'> {
  /** The first served domain. */
  readonly domain: string;
  readonly hosts: string[];
  readonly dataDir: string;
  readonly server: RunningServer;
  readonly config: Config;
  /** The generated TOML (also written to dataDir/meerkat.toml). */
  readonly configText: string;
  /** PEM of the certificate the listeners present. */
  readonly certificate: string;
  /** Captured log lines (pino JSON), newest last. */
  readonly logs: string[];
  /** Port of the first listener of that kind (default: the first listener). */
  port(kind?: ListenerKind): number;
  /** `user` or `user@domain` (default domain: the first host). */
  addUser(jid: string, password: string): Promise<TestUser>;
  stop(): Promise<void>;
}

const MAX_LOG_LINES = 5000;

function capturingLogger(lines: string[], loglevel: string): Logger {
  const echo = process.env.MEERKAT_TEST_LOG !== undefined;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = chunk.toString('utf8');
      lines.push(text.trimEnd());
      if (lines.length > MAX_LOG_LINES) lines.shift();
      if (echo) process.stderr.write(text);
      done();
    },
  });
  return createLogger(process.env.MEERKAT_TEST_LOG ?? loglevel, sink);
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'meerkat-test-'));
  const postgresSchema = options.storage === 'postgres' ? `meerkat_test_${randomBytes(6).toString('hex')}` : undefined;
  const cleanup = async () => {
    if (process.env.MEERKAT_TEST_KEEP) return;
    await rm(dataDir, { recursive: true, force: true });
    if (postgresSchema !== undefined) await postgresQuery(`drop schema if exists "${postgresSchema}" cascade`);
  };
  try {
    const built = buildTestConfig(dataDir, options, [], postgresSchema);
    const configPath = path.join(dataDir, 'meerkat.toml');
    await writeFile(configPath, built.text);
    const config = parseConfig(built.text, configPath);
    const logs: string[] = [];
    const server = await startServer(config, { log: options.log ?? capturingLogger(logs, config.general.loglevel) });
    const certificate = await readFile(config.tls.certfile ?? path.join(dataDir, 'self-signed.crt'), 'utf8');
    const untrust = trustCertificate(certificate, config.general.hosts);
    return makeTestServer({ dataDir, config, configText: built.text, kinds: built.kinds, server, certificate, logs, cleanup, untrust });
  } catch (err) {
    await cleanup();
    throw err;
  }
}

interface Parts {
  dataDir: string;
  config: Config;
  configText: string;
  kinds: ListenerKind[];
  server: RunningServer;
  certificate: string;
  logs: string[];
  cleanup: () => Promise<void>;
  untrust: () => void;
}

function makeTestServer(parts: Parts): TestServer {
  const { config, server, kinds } = parts;
  const hosts = config.general.hosts;
  const clients = clientFactory({ hosts, kinds, ports: server.ports, certificate: parts.certificate });
  let stopped: Promise<void> | undefined;
  const testServer: TestServer = {
    domain: hosts[0],
    hosts,
    dataDir: parts.dataDir,
    server,
    config,
    configText: parts.configText,
    certificate: parts.certificate,
    logs: parts.logs,
    port: (kind) => portOf(kinds, server.ports, kind),
    addUser: (jid, password) => createAccount(server.storage, hosts, config.auth.scram_iterations, jid, password),
    connect: (options) => clients.connect(options),
    login: (user, password, options) => clients.login(user, password, options),
    stop() {
      stopped ??= (async () => {
        try {
          await server.stop('test finished');
        } finally {
          clients.destroyAll();
          parts.untrust();
          await parts.cleanup();
        }
      })();
      return stopped;
    },
  };
  return testServer;
}
