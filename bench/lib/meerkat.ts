/**
 * Meerkat as a benchmark target: a generated config in a temporary data folder (loopback,
 * one listener without TLS and one with STARTTLS, no read shaping, high connection limits,
 * PLAIN allowed without TLS, SCRAM keys with 4096 iterations like the peers), accounts
 * written straight into its SQLite file through the server's own account manager before it
 * starts, and `node bin/meerkat.js start` pinned to core 0 (optionally under --cpu-prof).
 *
 * A variant with a set-up (VariantSetup: the archive on, PostgreSQL, a pre-filled archive)
 * gets a server of its own: a fresh database of its backend (a SQLite file in the data
 * folder, or a new schema of --postgres-url), its accounts provisioned there, the set-up's
 * `prepare`, then the server on a config with the set-up's tables merged in. The database is
 * deleted when the next variant starts or the bench stops (kept with --keep).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parse, stringify, type TomlTable } from 'smol-toml';
import { openStorage, type SqlStorage, type StorageOptions } from '../../src/storage/index.ts';
import { Accounts } from '../../src/auth/accounts.ts';
import type { BenchOptions } from './options.ts';
import { runPool } from './pool.ts';
import { exited, freePorts, terminate, waitForPort } from './proc.ts';
import { dropSchema, freshSchemaName, pgExec, redactUrl, unreachable } from './postgres.ts';
import type { Endpoint, PrepareContext, VariantSetup } from './scenario.ts';
import type { PreparedVariant, Target } from './targets.ts';

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

/**
 * The benchmark configuration (TOML text) for a data folder and two ports; `extraToml`
 * (--meerkat-toml) is merged over it, then a variant's `overlay` (its set-up's tables and
 * storage) over both.
 */
export function benchConfig(dataDir: string, domain: string, plainPort: number, tlsPort: number, extraToml?: string, overlay?: TomlTable): string {
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
    // Like the peers' configs: no archive, unless a variant switches it on.
    modules: { mam: { enabled: false } },
  };
  const merged = extraToml === undefined ? base : merge(base, parse(extraToml));
  return stringify(overlay === undefined ? merged : merge(merged, overlay));
}

const silent = pino({ level: 'silent' });

/** Creates user1..userN (PRECIS-prepared, SCRAM keys) as `meerkat user add` would. */
async function provisionInto(storage: SqlStorage, count: number, prefix: string, domain: string, password: string): Promise<void> {
  const accounts = new Accounts(storage, BENCH_ITERATIONS);
  await runPool(count, 8, async (i) => {
    await accounts.create(Accounts.ref(`${prefix}${i + 1}`, domain), password);
  });
}

/** The database of the variant running now, and how to delete it. */
interface ActiveSetup {
  label: string;
  where: string;
  accounts: number;
  drop(): Promise<void>;
}

export class MeerkatTarget implements Target {
  readonly name = 'meerkat';
  readonly managed = true;
  readonly version: string;
  private dataDir = '';
  private configPath = '';
  private extraToml: string | undefined;
  private setup: ActiveSetup | undefined;
  private setups = 0;
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
    this.extraToml = this.options.meerkatToml === undefined ? undefined : await readFile(this.options.meerkatToml, 'utf8');
    this.configPath = path.join(this.dataDir, 'meerkat.toml');
    await writeFile(this.configPath, benchConfig(this.dataDir, this.options.domain, this.ports[0], this.ports[1], this.extraToml));
    await this.provision({ backend: 'sqlite', path: path.join(this.dataDir, 'meerkat.sqlite') }, accounts);
    await this.launch(this.configPath);
  }

  /** Accounts go straight into the database, as `meerkat user add` would write them. */
  private async provision(options: StorageOptions, count: number, then?: (storage: SqlStorage) => Promise<void>): Promise<void> {
    const started = performance.now();
    const storage = await openStorage(options, silent);
    try {
      await provisionInto(storage, count, this.options.userPrefix, this.options.domain, this.options.password);
      this.log(`meerkat: ${count} accounts provisioned (${options.backend}) in ${((performance.now() - started) / 1000).toFixed(1)}s`);
      await then?.(storage);
    } finally {
      await storage.close();
    }
  }

  /** Stops the server and starts it on a fresh database set up for one variant (see VariantSetup). */
  async startWithSetup(setup: VariantSetup, accounts: number, label: string): Promise<PreparedVariant> {
    if (setup.storage === 'postgres') {
      const reason = await unreachable(this.options.postgresUrl);
      if (reason !== undefined) return { skipped: reason };
    }
    await this.stopProcess();
    await this.dropSetup();
    const n = ++this.setups;
    const slug = `${label.replace(/[^a-zA-Z0-9]+/g, '-')}-${n}`;
    let storageOptions: StorageOptions;
    let storageTable: TomlTable;
    let admin: PrepareContext['admin'];
    if (setup.storage === 'postgres') {
      const url = this.options.postgresUrl;
      const schema = freshSchemaName();
      storageOptions = { backend: 'postgres', url, poolSize: 4, schema };
      storageTable = { backend: 'postgres', postgres: { url, schema } };
      admin = (sql) => pgExec(url, sql, schema);
      this.setup = { label, accounts, where: `PostgreSQL schema ${schema} of ${redactUrl(url)}`, drop: () => dropSchema(url, schema) };
    } else {
      const file = path.join(this.dataDir, `${slug}.sqlite`);
      storageOptions = { backend: 'sqlite', path: file };
      storageTable = { backend: 'sqlite', sqlite: { path: file } };
      this.setup = { label, accounts, where: file, drop: () => rm(file, { force: true }).then(() => rm(`${file}-wal`, { force: true })).then(() => rm(`${file}-shm`, { force: true })) };
    }
    let prepared: Awaited<ReturnType<NonNullable<VariantSetup['prepare']>>> = { figures: {} };
    await this.provision(storageOptions, accounts, async (storage) => {
      if (setup.prepare === undefined) return;
      prepared = await setup.prepare({ storage, backend: setup.storage, options: this.options, domain: this.options.domain, log: this.log, admin });
    });
    const configPath = path.join(this.dataDir, `meerkat-${slug}.toml`);
    const overlay: TomlTable = { ...(setup.config as TomlTable | undefined), storage: storageTable };
    await writeFile(configPath, benchConfig(this.dataDir, this.options.domain, this.ports[0], this.ports[1], this.extraToml, overlay));
    await this.launch(configPath);
    return prepared;
  }

  /** Back to the default server when a variant's set-up is active or the server is down; true when it (re)started. */
  async ensureDefault(): Promise<boolean> {
    if (this.setup === undefined && this.child !== undefined) return false;
    await this.restart();
    return true;
  }

  private async dropSetup(): Promise<void> {
    const setup = this.setup;
    this.setup = undefined;
    if (setup === undefined) return;
    if (this.options.keep) {
      this.log(`meerkat: database of ${setup.label} kept: ${setup.where}`);
      return;
    }
    try {
      await setup.drop();
    } catch (err) {
      this.log(`meerkat: could not delete the database of ${setup.label} (${setup.where}): ${(err as Error).message}`);
    }
  }

  private async launch(configPath: string): Promise<void> {
    // MEERKAT_BENCH_ENTRY: another entry script taking the same arguments (a .ts one runs under tsx).
    const entry = process.env.MEERKAT_BENCH_ENTRY ?? path.join(REPO, 'bin/meerkat.js');
    const args = [entry, 'start', '--config', configPath];
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

  /** Restarts on the default config (a variant's set-up, if any, is dropped). */
  async restart(): Promise<void> {
    await this.stopProcess();
    await this.dropSetup();
    await this.launch(this.configPath);
  }

  private async stopProcess(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child !== undefined) await terminate(child, 15_000);
  }

  async stop(): Promise<void> {
    await this.stopProcess();
    await this.dropSetup();
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
      accounts: this.setup?.accounts ?? this.accounts,
    };
  }
}
