/**
 * The real CLI (`node bin/meerkat.js start --config FILE`) as a child process, for signal
 * and graceful-shutdown tests. Ports are fixed in its config: free ones are found by binding
 * port 0 and releasing it. Accounts go into its SQLite file before it starts (`users`) or
 * while it runs (`addUser`, through a second connection to the same database).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parseConfig, storageOptions } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { openStorage } from '../../src/storage/index.ts';
import { buildTestConfig, portOf, type ListenerKind, type TestConfigOptions } from './test-config.ts';
import { clientFactory, type ClientFactory } from './clients.ts';
import { createAccount, type TestUser } from './accounts.ts';
import { postgresQuery } from './storage-backends.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcessOptions extends TestConfigOptions {
  /** Accounts to create before start: `name` or `name@domain` → password. */
  users?: Record<string, string>;
  /** Extra environment for the child. */
  env?: Record<string, string>;
  /** How long to wait for every port to accept connections (default 30 s). */
  startTimeout?: number;
}

export interface ServerProcess extends Omit<ClientFactory, 'destroyAll'> {
  readonly domain: string;
  readonly hosts: string[];
  readonly dataDir: string;
  readonly configPath: string;
  readonly config: Config;
  readonly certificate: string;
  readonly child: ChildProcess;
  /** Everything the process wrote so far. */
  readonly stdout: string;
  readonly stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  port(kind?: ListenerKind): number;
  kill(signal?: NodeJS.Signals): boolean;
  addUser(jid: string, password: string): Promise<TestUser>;
  /** SIGKILL if still running, then remove the data folder. */
  stop(): Promise<void>;
}

/** Ports that were free a moment ago (all held at once, so they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

async function withStorage<T>(config: Config, work: (storage: Awaited<ReturnType<typeof openStorage>>) => Promise<T>): Promise<T> {
  const storage = await openStorage(storageOptions(config), pino({ level: 'silent' }));
  try {
    return await work(storage);
  } finally {
    await storage.close();
  }
}

export async function startServerProcess(options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'meerkat-proc-'));
  const kindsWanted = options.listeners ?? ['starttls', 'direct'];
  const ports = await freePorts(kindsWanted.length);
  const postgresSchema = options.storage === 'postgres' ? `meerkat_test_${randomBytes(6).toString('hex')}` : undefined;
  const configPath = path.join(dataDir, 'meerkat.toml');
  let config: ReturnType<typeof parseConfig>;
  let built: ReturnType<typeof buildTestConfig>;
  try {
    built = buildTestConfig(dataDir, { ...options, listeners: kindsWanted }, ports, postgresSchema);
    await writeFile(configPath, built.text);
    config = parseConfig(built.text, configPath);
    if (config.listen.c2s.some((listener, i) => listener.port !== ports[i])) {
      throw new Error('startServerProcess picks the ports itself: set `listeners`, not [[listen.c2s]] in the TOML');
    }
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const hosts = config.general.hosts;
  const iterations = config.auth.scram_iterations;
  const addUser = (jid: string, password: string) => withStorage(config, (s) => createAccount(s, hosts, iterations, jid, password));
  for (const [jid, password] of Object.entries(options.users ?? {})) await addUser(jid, password);

  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/meerkat.js'), 'start', '--config', configPath], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8'); });
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let hasExited = false;
  void exited.then(() => { hasExited = true; });
  // A test that dies must not leave a server running.
  const reap = () => { if (!hasExited) child.kill('SIGKILL'); };
  process.once('exit', reap);
  const cleanup = async () => {
    reap();
    await exited;
    process.off('exit', reap);
    if (process.env.MEERKAT_TEST_KEEP) return;
    await rm(dataDir, { recursive: true, force: true });
    if (postgresSchema !== undefined) await postgresQuery(`drop schema if exists "${postgresSchema}" cascade`);
  };

  const deadline = Date.now() + (options.startTimeout ?? 30_000);
  for (const port of built.kinds.map((_, i) => ports[i])) {
    while (!(await accepts(port))) {
      if (hasExited || Date.now() > deadline) {
        await cleanup();
        const why = hasExited ? `exited (${JSON.stringify(await exited)})` : 'did not open its ports in time';
        throw new Error(`meerkat process ${why}\n--- stderr ---\n${stderr}\n--- stdout ---\n${stdout}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  const certificate = await readFile(config.tls.certfile ?? path.join(dataDir, 'self-signed.crt'), 'utf8');
  const clients = clientFactory({ hosts, kinds: built.kinds, ports, certificate });
  let stopped: Promise<void> | undefined;
  return {
    domain: hosts[0],
    hosts,
    dataDir,
    configPath,
    config,
    certificate,
    child,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    exited,
    port: (kind) => portOf(built.kinds, ports, kind),
    kill: (signal = 'SIGTERM') => child.kill(signal),
    addUser,
    connect: (o) => clients.connect(o),
    login: (user, password, o) => clients.login(user, password, o),
    stop() {
      stopped ??= (async () => {
        clients.destroyAll();
        await cleanup();
      })();
      return stopped;
    },
  };
}
