/**
 * What a scenario is. A scenario is one file under bench/scenarios/ exporting a Scenario;
 * bench/scenarios/index.ts lists them. Its `run` executes inside the load-generator process
 * (pinned to core 1), never in the orchestrator or the server; everything else (variants,
 * account needs, report rows) is read by the orchestrator.
 */
import type { SqlStorage } from '../../src/storage/index.ts';
import type { BenchOptions } from './options.ts';

/** How the generator reaches a server under test. */
export interface Endpoint {
  /** Display name: meerkat, prosody, ejabberd, or host:port for any other server. */
  target: string;
  host: string;
  domain: string;
  /** Port for connections that stay in cleartext. */
  plainPort: number;
  /** Port for connections that upgrade with STARTTLS. */
  tlsPort: number;
  /** The server's process on this machine (memory and CPU figures), when known. */
  pid?: number;
  /** Accounts are `${userPrefix}${i}` for i in 1..accounts, all with `password`. */
  userPrefix: string;
  password: string;
  accounts: number;
}

export interface RunContext {
  endpoint: Endpoint;
  options: BenchOptions;
  variant: string;
  /** What the variant's `setup.prepare` handed over (see VariantSetup), if anything. */
  prepared?: unknown;
  /** Progress to stderr. */
  log(message: string): void;
}

/**
 * A scenario's figures: flat JSON, printed as one line. `error` marks a failed variant (the
 * run exits non-zero); `skipped` one this target cannot run (e.g. a Meerkat-only variant
 * against Prosody), which is reported but is not a failure.
 */
export type Figures = Record<string, unknown>;

export type StorageBackendName = 'sqlite' | 'postgres';

/** What `VariantSetup.prepare` gets: the fresh database, accounts already in it. */
export interface PrepareContext {
  /** The server's own storage layer (src/storage) on the variant's fresh database. */
  storage: SqlStorage;
  backend: StorageBackendName;
  options: BenchOptions;
  domain: string;
  log(message: string): void;
  /** Runs one SQL statement outside the storage layer (PostgreSQL only: VACUUM ANALYZE and the like). */
  admin?(sql: string): Promise<void>;
}

/**
 * Server-side set-up one variant needs: only a Meerkat the bench manages can have it (other
 * targets report such a variant as skipped). The server is stopped, a fresh database of
 * `storage` is created (SQLite: a new file; PostgreSQL: a new schema of --postgres-url) and
 * the scenario's accounts provisioned into it, `prepare` runs (in the orchestrator, before
 * the server starts), and the server starts on it with `config` merged over the bench
 * config. Afterwards the database is deleted and the next variant without a set-up gets the
 * default server again.
 */
export interface VariantSetup {
  storage: StorageBackendName;
  /** TOML tables merged over the bench config (and over --meerkat-toml), e.g. { modules: { mam: { enabled: true } } }. */
  config?: Record<string, unknown>;
  prepare?(ctx: PrepareContext): Promise<{ figures: Figures; handoff?: unknown }>;
}

export interface ScenarioResult {
  scenario: string;
  variant: string;
  target: string;
  figures: Figures;
}

export interface Scenario {
  name: string;
  description: string;
  /** The variants to run with these options (e.g. with and without TLS). */
  variants(options: BenchOptions): string[];
  /** Accounts user1..userN this scenario needs on the target. */
  accounts(options: BenchOptions): number;
  /** Restart a server the bench manages before each variant (memory, throughput). */
  freshServer?: boolean;
  /** Runs once per bench run rather than once per target (the relay ceiling). */
  targetIndependent?: boolean;
  /** The server-side set-up a variant needs (Meerkat only), or undefined for the default server. */
  setup?(variant: string, options: BenchOptions): VariantSetup | undefined;
  /** Executed in the generator process. */
  run(ctx: RunContext): Promise<Figures>;
  /** Label/value rows for the human-readable table. */
  rows(figures: Figures): [string, string][];
  /** The few figures the cross-target comparison table shows, by column name. */
  headline(figures: Figures): Record<string, string>;
}

export function num(figures: Figures, key: string): number {
  const v = figures[key];
  return typeof v === 'number' ? v : NaN;
}

export function fmt(x: unknown, digits = 1): string {
  if (typeof x !== 'number' || !Number.isFinite(x)) return x === undefined || x === null ? '-' : String(x);
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(digits).replace(/\.0+$/, '');
}
