/**
 * Meerkat as a benchmark target: a generated config in a temporary data folder (loopback,
 * one listener without TLS and one with STARTTLS, no read shaping, high connection limits,
 * PLAIN allowed without TLS, SCRAM keys with 4096 iterations like the peers), accounts
 * written straight into its SQLite file through the server's own account manager before it
 * starts, and `node bin/meerkat.js start` pinned to core 0 (optionally under --cpu-prof).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parse, stringify, type TomlTable } from 'smol-toml';
import { openStorage } from '../../src/storage/index.ts';
import { Accounts } from '../../src/auth/accounts.ts';
import type { BenchOptions } from './options.ts';
import { runPool } from './pool.ts';
import { exited, freePorts, terminate, waitForPort } from './proc.ts';
import type { Endpoint } from './scenario.ts';
import type { Target } from './targets.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BENCH_ITERATIONS = 4096;

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function merge(base: TomlTable, extra: TomlTable): TomlTable {
  const out: TomlTable = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] = isTable(current) && isTable(value) ? merge(current, value) : value;
  }
  return out;
}

/** The benchmark configuration (TOML text) for a data folder and two ports. */
export function benchConfig(dataDir: string, domain: string, plainPort: number, tlsPort: number, extraToml?: string): string {
  const listener = (port: number, mode: string) => ({
    port,
    address: '127.0.0.1',
    tls: { mode },
    max_connections: 200_000,
    max_connections_per_address: 200_000,
    rate_limit: { bytes_per_second: 0 },
  });
  const base: TomlTable = {
    general: { hosts: [domain], data_dir: dataDir, loglevel: 'warn' },
    storage: { backend: 'sqlite', sqlite: { path: path.join(dataDir, 'meerkat.sqlite') } },
    auth: { scram_iterations: BENCH_ITERATIONS, plain_without_tls: true },
    listen: { c2s: [listener(plainPort, 'none'), listener(tlsPort, 'starttls_required')] },
  };
  return stringify(extraToml === undefined ? base : merge(base, parse(extraToml)));
}

export class MeerkatTarget implements Target {
  readonly name = 'meerkat';
  readonly managed = true;
  readonly version: string;
  private dataDir = '';
  private configPath = '';
  private ports: number[] = [];
  private child: ChildProcess | undefined;
  private accounts = 0;
  private launches = 0;

  constructor(private readonly options: BenchOptions, private readonly log: (m: string) => void) {
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    this.version = pkg.version;
  }

  async start(accounts: number): Promise<void> {
    this.accounts = accounts;
    this.dataDir = await mkdtemp(path.join(os.tmpdir(), 'meerkat-bench-'));
    this.ports = await freePorts(2);
    const extra = this.options.meerkatToml === undefined ? undefined : await readFile(this.options.meerkatToml, 'utf8');
    this.configPath = path.join(this.dataDir, 'meerkat.toml');
    await writeFile(this.configPath, benchConfig(this.dataDir, this.options.domain, this.ports[0], this.ports[1], extra));
    await this.provision(accounts);
    await this.launch();
  }

  /** Accounts go straight into the database, as `meerkat user add` would write them. */
  private async provision(count: number): Promise<void> {
    const started = performance.now();
    const storage = await openStorage({ backend: 'sqlite', path: path.join(this.dataDir, 'meerkat.sqlite') }, pino({ level: 'silent' }));
    try {
      const accounts = new Accounts(storage, BENCH_ITERATIONS);
      await runPool(count, 8, async (i) => {
        await accounts.create(Accounts.ref(`${this.options.userPrefix}${i + 1}`, this.options.domain), this.options.password);
      });
    } finally {
      await storage.close();
    }
    this.log(`meerkat: ${count} accounts provisioned in ${((performance.now() - started) / 1000).toFixed(1)}s`);
  }

  private async launch(): Promise<void> {
    // MEERKAT_BENCH_ENTRY: another entry script taking the same arguments (a .ts one runs under tsx).
    const entry = process.env.MEERKAT_BENCH_ENTRY ?? path.join(REPO, 'bin/meerkat.js');
    const args = [entry, 'start', '--config', this.configPath];
    const nodeArgs: string[] = entry.endsWith('.ts') ? ['--import', 'tsx'] : [];
    if (this.options.cpuProf !== undefined) {
      await mkdir(this.options.cpuProf, { recursive: true });
      nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${path.resolve(this.options.cpuProf)}`);
    }
    const logFile = path.join(this.dataDir, `server-${++this.launches}.log`);
    const out = createWriteStream(logFile);
    const command = this.options.pin ? 'taskset' : process.execPath;
    const commandArgs = this.options.pin ? ['-c', '0', process.execPath, ...nodeArgs, ...args] : [...nodeArgs, ...args];
    const child = spawn(command, commandArgs, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    this.child = child;
    let alive = true;
    void exited(child).then(() => { alive = false; });
    try {
      for (const port of this.ports) await waitForPort('127.0.0.1', port, 60_000, () => alive);
    } catch (err) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new Error(`meerkat did not start: ${(err as Error).message}\n${log.slice(-4000)}`);
    }
  }

  async restart(): Promise<void> {
    await this.stopProcess();
    await this.launch();
  }

  private async stopProcess(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child !== undefined) await terminate(child, 15_000);
  }

  async stop(): Promise<void> {
    await this.stopProcess();
    if (this.dataDir !== '' && !this.options.keep) await rm(this.dataDir, { recursive: true, force: true });
    else if (this.dataDir !== '') this.log(`meerkat data kept in ${this.dataDir}`);
  }

  endpoint(): Endpoint {
    return {
      target: this.name,
      host: '127.0.0.1',
      domain: this.options.domain,
      plainPort: this.ports[0],
      tlsPort: this.ports[1],
      pid: this.child?.pid,
      userPrefix: this.options.userPrefix,
      password: this.options.password,
      accounts: this.accounts,
    };
  }
}
