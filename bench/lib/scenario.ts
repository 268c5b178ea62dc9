/**
 * What a scenario is. A scenario is one file under bench/scenarios/ exporting a Scenario;
 * bench/scenarios/index.ts lists them. Its `run` executes inside the load-generator process
 * (pinned to core 1), never in the orchestrator or the server; everything else (variants,
 * account needs, report rows) is read by the orchestrator.
 */
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
  /** Progress to stderr. */
  log(message: string): void;
}

/** A scenario's figures: flat JSON, printed as one line. */
export type Figures = Record<string, unknown>;

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
