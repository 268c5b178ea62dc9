/**
 * The TOML configuration of a test server: a temporary data folder with its SQLite file,
 * loopback listeners, cheap SCRAM iterations, no message archive unless asked, and whatever a test adds on top (its TOML is
 * merged into the base, so it may override any key, `[auth]` included).
 */
import path from 'node:path';
import { parse, stringify, type TomlTable } from 'smol-toml';
import { POSTGRES_URL } from './storage-backends.ts';

/** starttls = STARTTLS required; starttls-optional = offered; direct = XEP-0368; plain = no TLS at all. */
export type ListenerKind = 'starttls' | 'starttls-optional' | 'direct' | 'plain';

const MODE_OF: Record<ListenerKind, string> = {
  starttls: 'starttls_required',
  'starttls-optional': 'starttls',
  direct: 'direct',
  plain: 'none',
};

export interface TestConfigOptions {
  /** Served domains; the first is the default. Default ['localhost']. */
  hosts?: string[];
  /** Extra TOML merged over the base: module tables, [auth] overrides, even [[listen.c2s]]. */
  toml?: string;
  /** Listeners in order. Default: STARTTLS-required, then direct TLS. */
  listeners?: ListenerKind[];
  /**
   * 'postgres': the server stores into a fresh schema of the test PostgreSQL database
   * (MEERKAT_TEST_POSTGRES_URL), dropped when the server stops. Default 'sqlite'.
   */
  storage?: 'sqlite' | 'postgres';
}

export interface TestConfig {
  text: string;
  hosts: string[];
  /** The kind of each listener, in [[listen.c2s]] order. */
  kinds: ListenerKind[];
}

function isTable(value: unknown): value is TomlTable {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Tables merge key by key; anything else (arrays included) is replaced. */
function merge(base: TomlTable, extra: TomlTable): TomlTable {
  const out: TomlTable = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] = isTable(current) && isTable(value) ? merge(current, value) : value;
  }
  return out;
}

/** `ports[i]` fixes listener i's port (for a server in another process); 0 = ephemeral. */
export function buildTestConfig(dataDir: string, options: TestConfigOptions = {}, ports: number[] = [], postgresSchema?: string): TestConfig {
  const hosts = options.hosts ?? ['localhost'];
  const listeners = options.listeners ?? ['starttls', 'direct'];
  const base: TomlTable = {
    general: { hosts, data_dir: dataDir, loglevel: process.env.MEERKAT_TEST_LOG ?? 'warn' },
    storage: postgresSchema === undefined
      ? { backend: 'sqlite', sqlite: { path: path.join(dataDir, 'meerkat.sqlite') } }
      : { backend: 'postgres', postgres: { url: POSTGRES_URL, schema: postgresSchema, pool_size: 4 } },
    auth: { scram_iterations: 4096 },
    listen: {
      c2s: listeners.map((kind, i) => ({ port: ports[i] ?? 0, address: '127.0.0.1', tls: { mode: MODE_OF[kind] } })),
    },
  };
  let extra: TomlTable = {};
  if (options.toml !== undefined) {
    try {
      extra = parse(options.toml);
    } catch (err) {
      throw new Error(`invalid test TOML: ${(err as Error).message}`);
    }
  }
  // The archive is on by default in the server; tests of other features leave it out (their
  // exact stanzas would otherwise carry stanza ids), and a test that wants it has [modules.mam].
  const modules = extra.modules;
  if (!(isTable(modules) && 'mam' in modules)) base.modules = { mam: { enabled: false } };
  const merged = merge(base, extra);
  const general = merged.general;
  const finalHosts = isTable(general) && Array.isArray(general.hosts) ? general.hosts.map(String) : hosts;
  return { text: stringify(merged), hosts: finalHosts, kinds: listenerKinds(merged) };
}

function listenerKinds(config: TomlTable): ListenerKind[] {
  const listen = config.listen;
  const c2s = isTable(listen) && Array.isArray(listen.c2s) ? listen.c2s : [];
  return c2s.map((entry) => {
    const tls = isTable(entry) && isTable(entry.tls) ? entry.tls : {};
    const mode = typeof tls.mode === 'string' ? tls.mode : 'starttls_required';
    const kind = (Object.keys(MODE_OF) as ListenerKind[]).find((k) => MODE_OF[k] === mode);
    if (kind === undefined) throw new Error(`unknown listener tls.mode '${mode}' in test TOML`);
    return kind;
  });
}

export function portOf(kinds: ListenerKind[], ports: number[], kind: ListenerKind | undefined): number {
  const index = kind === undefined ? 0 : kinds.indexOf(kind);
  if (index < 0 || ports[index] === undefined) throw new Error(`this test server has no '${kind}' listener (it has: ${kinds.join(', ')})`);
  return ports[index];
}
