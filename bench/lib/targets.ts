/**
 * Servers under test, as the orchestrator sees them: start (with accounts), restart, stop,
 * and the Endpoint the generator gets. Meerkat lives in meerkat.ts; here are any server
 * given by address (accounts by XEP-0077 or pre-provisioned) and the peers Prosody and
 * ejabberd as configured by bench/peers/setup.sh.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerAccount } from './client.ts';
import type { BenchOptions } from './options.ts';
import { FailureCounter, runPool } from './pool.ts';
import { exited, findDescendant, sleep, spawnPinned, waitForPort } from './proc.ts';
import type { Endpoint, Figures, VariantSetup } from './scenario.ts';

/** What a variant's set-up produced: figures for its report and data for its generator; or why it cannot run here. */
export type PreparedVariant = { figures: Figures; handoff?: unknown } | { skipped: string };

export interface Target {
  readonly name: string;
  readonly version: string;
  /** The bench started this server and may restart it. */
  readonly managed: boolean;
  /** Start (if managed) and make sure accounts user1..user<accounts> exist. */
  start(accounts: number): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
  endpoint(): Endpoint;
  /**
   * Only a target that can run variants with a set-up (Meerkat): stops the server and starts
   * it on a fresh database prepared for the variant, with `accounts` accounts there.
   */
  startWithSetup?(setup: VariantSetup, accounts: number, label: string): Promise<PreparedVariant>;
  /** Returns to the default server after a variant with a set-up; true when it (re)started the server. */
  ensureDefault?(): Promise<boolean>;
}

/** Creates user1..userN by in-band registration; existing accounts count as done. */
export async function provisionByRegistration(endpoint: Endpoint, options: BenchOptions, log: (m: string) => void): Promise<void> {
  const started = performance.now();
  const failures = new FailureCounter();
  let created = 0;
  await runPool(endpoint.accounts, options.provisionC, async (i) => {
    try {
      if (await registerAccount({
        host: endpoint.host,
        port: endpoint.plainPort,
        domain: endpoint.domain,
        username: `${endpoint.userPrefix}${i + 1}`,
        password: endpoint.password,
        timeoutMs: options.timeoutMs,
      })) created++;
    } catch (err) {
      failures.add(err);
    }
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  log(`${endpoint.target}: ${endpoint.accounts} accounts by XEP-0077 (${created} new) in ${seconds}s`);
  if (failures.total > 0) throw new Error(`registration failed for ${failures.total} accounts: ${JSON.stringify(failures.byReason)}`);
}

/** Any XMPP server given by --host/--port/--domain. */
export class RemoteTarget implements Target {
  readonly managed = false;
  readonly name: string;
  readonly version = 'unknown';
  private accounts = 0;

  constructor(private readonly options: BenchOptions, private readonly log: (m: string) => void) {
    this.name = `${options.host}:${options.port}`;
  }

  async start(accounts: number): Promise<void> {
    this.accounts = accounts;
    if (!this.options.provisioned) await provisionByRegistration(this.endpoint(), this.options, this.log);
  }

  async restart(): Promise<void> {}
  async stop(): Promise<void> {}

  endpoint(): Endpoint {
    const o = this.options;
    return {
      target: this.name,
      host: o.host!,
      domain: o.domain,
      plainPort: o.port!,
      tlsPort: o.tlsPort ?? o.port!,
      pid: o.pid,
      userPrefix: o.userPrefix,
      password: o.password,
      accounts: this.accounts,
    };
  }
}

interface PeersFile {
  dir: string;
  domain: string;
  prosody: { port: number; version: string };
  ejabberd: { port: number; version: string };
}

const SETUP = fileURLToPath(new URL('../peers/setup.sh', import.meta.url));

/** The peers' configuration, writing it first (setup.sh --configs-only) when missing. */
export function loadPeers(dir: string, log: (m: string) => void): PeersFile {
  const file = path.join(dir, 'peers.json');
  if (!existsSync(file)) {
    log(`writing peer configs into ${dir}`);
    try {
      execFileSync('sh', [SETUP, '--configs-only', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    } catch {
      throw new Error(`Prosody/ejabberd are not set up: run bench/peers/setup.sh ${dir}`);
    }
  }
  return JSON.parse(readFileSync(file, 'utf8')) as PeersFile;
}

interface PeerSpec {
  name: 'prosody' | 'ejabberd';
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** Command name of the real server process below the wrappers. */
  processName: RegExp;
}

/**
 * ejabberdctl run by root switches to the ejabberd user with su, whose PAM session drops the
 * open-files limit to 1024 (ejabberd then refuses connections past ~1000). As root, switch
 * user with setpriv instead, which keeps this process's limits; ejabberdctl then runs as the
 * install user directly.
 */
function ejabberdCommand(args: string[]): { command: string; args: string[]; env?: Record<string, string> } {
  if (process.getuid?.() !== 0) return { command: 'ejabberdctl', args };
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    execFileSync('id', ['ejabberd'], { stdio: 'ignore' });
  } catch {
    return { command: 'ejabberdctl', args };
  }
  return {
    command: 'setpriv',
    args: ['--reuid=ejabberd', '--regid=ejabberd', '--init-groups', '--', 'ejabberdctl', ...args],
    env: { HOME: '/var/lib/ejabberd' },
  };
}

/** Prosody or ejabberd from bench/peers/setup.sh, started here pinned to core 0. */
export class PeerTarget implements Target {
  readonly managed = true;
  readonly name: string;
  readonly version: string;
  private child: ChildProcess | undefined;
  private pid: number | undefined;
  private accounts = 0;
  private readonly port: number;
  private readonly domain: string;
  private readonly spec: PeerSpec;

  constructor(name: 'prosody' | 'ejabberd', peers: PeersFile, private readonly options: BenchOptions, private readonly log: (m: string) => void) {
    this.name = name;
    this.version = peers[name].version;
    this.port = peers[name].port;
    this.domain = peers.domain;
    const dir = peers.dir;
    this.spec = name === 'prosody'
      ? { name, command: 'prosody', args: ['--config', path.join(dir, 'prosody/prosody.cfg.lua'), '-F'], processName: /^(lua|prosody)/ }
      : { name, ...ejabberdCommand(['--ctl-config', path.join(dir, 'ejabberd/ejabberdctl.cfg'), '--logs', path.join(dir, 'ejabberd/logs'), 'foreground']), processName: /^beam/ };
  }

  private async launch(): Promise<void> {
    const child = spawnPinned(this.options.pin ? 0 : undefined, this.spec.command, this.spec.args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...this.spec.env },
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000); });
    this.child = child;
    let alive = true;
    void exited(child).then(() => { alive = false; });
    try {
      await waitForPort('127.0.0.1', this.port, 60_000, () => alive);
    } catch (err) {
      throw new Error(`${this.name} did not start: ${(err as Error).message}\n${stderr}`);
    }
    this.pid = findDescendant(child.pid!, this.spec.processName);
    if (this.pid === undefined) this.log(`${this.name}: server process not found, no memory/CPU figures`);
  }

  async start(accounts: number): Promise<void> {
    this.accounts = accounts;
    await this.launch();
    await provisionByRegistration(this.endpoint(), this.options, this.log);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    if (this.pid !== undefined) {
      try { process.kill(this.pid, 'SIGTERM'); } catch { /* gone */ }
    }
    child.kill('SIGTERM');
    const done = exited(child);
    const timeout = sleep(15_000).then(() => 'timeout');
    if ((await Promise.race([done, timeout])) === 'timeout') {
      if (this.pid !== undefined) try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ }
      child.kill('SIGKILL');
      await done;
    }
    // The port must be free before the next start.
    for (let i = 0; i < 100; i++) {
      if (this.pid === undefined || !existsSync(`/proc/${this.pid}`)) break;
      await sleep(100);
    }
    this.pid = undefined;
  }

  endpoint(): Endpoint {
    return {
      target: this.name,
      host: '127.0.0.1',
      domain: this.domain,
      plainPort: this.port,
      tlsPort: this.port,
      pid: this.pid,
      userPrefix: this.options.userPrefix,
      password: this.options.password,
      accounts: this.accounts,
    };
  }
}
