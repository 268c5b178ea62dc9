/**
 * The configuration schema: one zod schema that validates `meerkat.toml`, supplies every
 * default (an empty file runs a server for `localhost` on SQLite) and documents every key
 * (`.describe()` texts feed the generated reference, docs/configuration.md).
 *
 * Layout follows MongooseIM's TOML: `[general]`, `[tls]`, `[[listen.c2s]]`, `[auth]`,
 * `[storage]`, `[modules.<name>]` (each module's own schema plus `enabled`) and
 * `[[host_config]]` for per-domain module tables. Every table is strict: an unknown key is
 * an error, not a silent typo.
 *
 * Durations are in seconds (fractions allowed), sizes in bytes. Paths are given as written;
 * load.ts resolves relative ones against the config file's folder.
 */
import { z } from 'zod';
import { SUPPORTED_MECHANISMS } from '../auth/sasl.ts';
import { MIN_ITERATIONS } from '../auth/scram.ts';
import { prepareDomainpart } from '../router/jid.ts';
import type { ModuleDefinition } from '../modules/api.ts';
import { allModules } from '../modules/index.ts';

// ---- building blocks ----

/** An integer in [min, max], with one message for every way of missing it. */
function int(min: number, max: number) {
  const message = `must be an integer between ${min} and ${max}`;
  const error = (issue: { input?: unknown }) => (issue.input === undefined ? 'required' : message);
  return z.int({ error }).min(min, { error: message }).max(max, { error: message });
}

/** A duration in seconds: positive, at most `max`. */
function seconds(max: number) {
  const message = `must be a number of seconds greater than 0 and at most ${max}`;
  const error = (issue: { input?: unknown }) => (issue.input === undefined ? 'required' : message);
  return z.number({ error }).positive({ error: message }).max(max, { error: message });
}

const filePath = () => z.string().min(1, { error: 'must not be empty' });

/** A domain name as XMPP compares it (RFC 7622 §3.2): lower case, IDNA, no trailing dot. */
export const domainSchema = z.string().transform((input, ctx) => {
  try {
    return prepareDomainpart(input);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a valid domain name: ${JSON.stringify(input)} (${(err as Error).message})`, input });
    return z.NEVER;
  }
});

function noDuplicates<T>(what: string) {
  return (values: T[], ctx: z.core.$RefinementCtx<T[]>) => {
    const seen = new Set<T>();
    values.forEach((value, index) => {
      if (seen.has(value)) ctx.addIssue({ code: 'custom', message: `${what} ${JSON.stringify(value)} is listed twice`, path: [index], input: value });
      seen.add(value);
    });
  };
}

/** certfile and keyfile come as a pair. */
function bothOrNeither(value: { certfile?: string; keyfile?: string }, ctx: z.core.$RefinementCtx<unknown>) {
  if (value.certfile !== undefined && value.keyfile === undefined) {
    ctx.addIssue({ code: 'custom', message: 'required when certfile is set', path: ['keyfile'], input: undefined });
  }
  if (value.keyfile !== undefined && value.certfile === undefined) {
    ctx.addIssue({ code: 'custom', message: 'required when keyfile is set', path: ['certfile'], input: undefined });
  }
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const TLS_MODES = ['starttls_required', 'starttls', 'direct', 'none'] as const;
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

// ---- [general] ----

const general = z.object({
  hosts: z.array(domainSchema).min(1, { error: 'must list at least one domain' }).superRefine(noDuplicates('domain'))
    .default(['localhost'])
    .describe('Domains this server serves (virtual hosts). The first is the default domain. Names are normalised (lower case, IDNA) and must be unique.'),
  data_dir: filePath().default('./data')
    .describe('Folder for server state: the SQLite database and the generated self-signed certificate. A relative path is relative to the config file\'s folder (to the working directory when there is no config file).'),
  loglevel: z.enum(LOG_LEVELS).default('info')
    .describe('Least severe log level written (pino levels). Logs go to stderr as JSON lines.'),
  max_stanza_size: int(10_000, 16 * 1024 * 1024).default(262_144)
    .describe('Largest stanza accepted from a client, in bytes; a bigger one closes the stream with <policy-violation/>. RFC 6120 §13.12 asks for at least 10000. Listeners may override it.'),
  max_xml_depth: int(8, 1000).default(32)
    .describe('Deepest element nesting accepted in a stanza (the stanza itself is depth 1); deeper closes the stream with <policy-violation/>.'),
  shutdown_timeout: seconds(3600).default(10)
    .describe('On SIGTERM/SIGINT, seconds to close streams and flush storage before the process exits anyway (with status 1).'),
}).strict();

// ---- [tls] ----

const tls = z.object({
  certfile: filePath().optional()
    .describe('PEM certificate chain presented to clients. With keyfile; when both are absent a self-signed certificate for the hosts is generated into data_dir (fine for tests, not for production).'),
  keyfile: filePath().optional()
    .describe('PEM private key of certfile.'),
  min_version: z.enum(TLS_VERSIONS).default('TLSv1.2')
    .describe('Oldest TLS version accepted.'),
}).strict().superRefine(bothOrNeither);

// ---- [[listen.c2s]] ----

const listenerTls = z.object({
  mode: z.enum(TLS_MODES).default('starttls_required')
    .describe('"starttls_required": STARTTLS offered and required before authentication; "starttls": offered but optional; "direct": TLS from the first byte (XEP-0368, port 5223); "none": no TLS at all (loopback benchmarks only).'),
  certfile: filePath().optional()
    .describe('Certificate for this listener only (with keyfile); default: the [tls] one.'),
  keyfile: filePath().optional()
    .describe('Private key of this listener\'s certfile.'),
}).strict().superRefine(bothOrNeither);

const c2sListener = z.object({
  port: int(0, 65535)
    .describe('TCP port. 0 picks a free port (tests).'),
  address: z.string().min(1, { error: 'must not be empty' }).default('0.0.0.0')
    .describe('Address to listen on: "0.0.0.0" for every IPv4 interface, "::" for IPv6 (and IPv4 on most systems), "127.0.0.1" for loopback only.'),
  tls: listenerTls.prefault({})
    .describe('TLS on this listener.'),
  max_connections: int(1, 10_000_000).default(10_000)
    .describe('Most open connections on this listener; further ones get <resource-constraint/> and are closed.'),
  max_connections_per_address: int(1, 10_000_000).default(100)
    .describe('Most open connections from one remote address; further ones get <policy-violation/> and are closed.'),
  auth_timeout: seconds(3600).default(30)
    .describe('Seconds a connection may take from opening to a bound resource before it is closed with <connection-timeout/>.'),
  idle_timeout: seconds(86_400).default(300)
    .describe('Seconds of silence from an authenticated client after which the server pings it (XEP-0199).'),
  ping_timeout: seconds(3600).default(30)
    .describe('Seconds to wait for the answer to that ping before closing the stream with <connection-timeout/>.'),
  max_stanza_size: int(10_000, 16 * 1024 * 1024).optional()
    .describe('Overrides general.max_stanza_size on this listener.'),
  rate_limit: z.object({
    bytes_per_second: int(0, 1_000_000_000).default(102_400)
      .describe('Bytes per second read from one connection (a token bucket allowing one second of burst); a faster client is slowed down, not disconnected. 0 turns the limit off.'),
  }).strict().prefault({})
    .describe('Per-connection traffic shaping.'),
}).strict();

const DEFAULT_LISTENERS = [
  { port: 5222, tls: { mode: 'starttls_required' } },
  { port: 5223, tls: { mode: 'direct' } },
] as const;

const listen = z.object({
  c2s: z.array(c2sListener).prefault(() => DEFAULT_LISTENERS.map((l) => ({ ...l, tls: { ...l.tls } }))).superRefine((listeners, ctx) => {
    const taken = new Map<string, number>();
    listeners.forEach((listener, index) => {
      if (listener.port === 0) return;
      const key = `${listener.address} ${listener.port}`;
      const other = taken.get(key);
      if (other !== undefined) {
        ctx.addIssue({ code: 'custom', message: `${listener.address}:${listener.port} is already used by listen.c2s[${other}]`, path: [index, 'port'], input: listener.port });
      } else {
        taken.set(key, index);
      }
    });
  })
    .describe('Client-to-server listeners, one [[listen.c2s]] table each. Default: port 5222 with STARTTLS required and port 5223 with direct TLS, on every interface.'),
}).strict();

// ---- [auth] ----

const auth = z.object({
  sasl_mechanisms: z.array(z.enum(SUPPORTED_MECHANISMS)).min(1, { error: 'must list at least one mechanism' }).superRefine(noDuplicates('mechanism'))
    .default([...SUPPORTED_MECHANISMS])
    .describe('SASL mechanisms offered, in order of preference. -PLUS variants are offered only over TLS with channel binding.'),
  plain_without_tls: z.boolean().default(false)
    .describe('Offer PLAIN on connections without TLS (sends the password in the clear; loopback benchmarks only).'),
  max_attempts: int(1, 100).default(3)
    .describe('Failed authentications allowed on one connection before it is closed.'),
  failures_per_address: int(1, 1_000_000).default(20)
    .describe('Failed authentications allowed per remote address per minute; past it authentication fails with <temporary-auth-failure/>.'),
  failures_per_account: int(1, 1_000_000).default(10)
    .describe('Failed authentications allowed per account per minute, whatever the address (slows password guessing from many addresses).'),
  scram_iterations: int(MIN_ITERATIONS, 10_000_000).default(4096)
    .describe(`PBKDF2 iterations of the SCRAM keys stored for new and changed passwords (at least ${MIN_ITERATIONS}, RFC 7677). Existing accounts keep theirs until their password changes.`),
}).strict();

// ---- [stream_management] ----

const streamManagement = z.object({
  enabled: z.boolean().default(true)
    .describe('Offer XEP-0198 stream management (acknowledgements and resumption) to clients.'),
  resume_timeout: seconds(86_400).default(300)
    .describe('Seconds a resumable session whose connection was lost stays alive (present to contacts, queueing what it is sent) for the client to resume it; advertised to clients as `max`. A client may ask for less. When it runs out, undelivered messages go to offline storage.'),
  max_unacked: int(1, 1_000_000).default(1000)
    .describe('Most stanzas sent to a client and not yet acknowledged. A client past it has its queue moved to offline storage and its stream closed with <policy-violation/>.'),
  ack_request_stanzas: int(1, 10_000).default(20)
    .describe('The server asks for an acknowledgement (<r/>) after this many stanzas sent since its last request, once the client has answered that one (each answer is a transmission from the phone and a read here; more unacknowledged stanzas means more repeated from offline storage if the session times out)...'),
  ack_request_delay: seconds(3600).default(5)
    .describe('...or this many seconds after a stanza went out that no request covers.'),
}).strict();

// ---- [storage] ----

const storage = z.object({
  backend: z.enum(['sqlite', 'postgres']).default('sqlite')
    .describe('"sqlite": embedded database in one file, no server needed. "postgres": PostgreSQL, for production and clusters.'),
  sqlite: z.object({
    path: filePath().default('meerkat.sqlite')
      .describe('Database file; a relative path is relative to general.data_dir.'),
  }).strict().prefault({})
    .describe('SQLite settings (backend = "sqlite").'),
  postgres: z.object({
    url: z.string().regex(/^postgres(ql)?:\/\//, { error: 'must be a postgres:// or postgresql:// URL' }).optional()
      .describe('Connection URL, e.g. "postgres://meerkat:secret@db.internal:5432/meerkat". Required when backend = "postgres".'),
    pool_size: int(1, 1000).default(10)
      .describe('Most simultaneous connections to PostgreSQL.'),
    schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: 'must be a lowercase PostgreSQL identifier' }).default('public')
      .describe('Schema holding Meerkat\'s tables (created when missing), so one database can host several installations.'),
  }).strict().prefault({})
    .describe('PostgreSQL settings (backend = "postgres").'),
}).strict().superRefine((value, ctx) => {
  if (value.backend === 'postgres' && value.postgres.url === undefined) {
    ctx.addIssue({ code: 'custom', message: 'required when storage.backend = "postgres"', path: ['postgres', 'url'], input: undefined });
  }
});

// ---- [modules.<name>] and [[host_config]] ----

/** A module's table as parsed: its own config (defaults applied) plus the `enabled` switch. */
export type ModuleTable = Record<string, unknown> & { enabled?: boolean };

export const ENABLED_DESCRIPTION = 'false switches the module off. A table without this key switches the module on, even one that is off by default.';

/** The schema of `[modules.<name>]` for one module: its config schema plus `enabled`. */
export function moduleTableSchema(definition: ModuleDefinition): z.ZodType<ModuleTable> {
  const schema = definition.config;
  if (!(schema instanceof z.ZodObject)) {
    throw new Error(`module ${definition.name}: its config schema must be a z.object(...)`);
  }
  return schema.extend({ enabled: z.boolean().optional().describe(ENABLED_DESCRIPTION) }) as unknown as z.ZodType<ModuleTable>;
}

function modulesSchema(modules: readonly ModuleDefinition[]) {
  const shape: Record<string, z.ZodOptional<z.ZodType<ModuleTable>>> = {};
  for (const definition of modules) shape[definition.name] = moduleTableSchema(definition).optional();
  return z.object(shape).strict();
}

/** The whole configuration, for a given module list (the server uses `configSchema`). */
export function buildConfigSchema(modules: readonly ModuleDefinition[]) {
  const moduleTables = modulesSchema(modules);
  return z.object({
    general: general.prefault({}).describe('Server-wide settings.'),
    tls: tls.prefault({}).describe('Default TLS certificate and protocol versions for every listener.'),
    listen: listen.prefault({}).describe('Network listeners.'),
    auth: auth.prefault({}).describe('Authentication (SASL) policy.'),
    stream_management: streamManagement.prefault({}).describe('XEP-0198 stream management: acknowledgements and resumption of client streams.'),
    storage: storage.prefault({}).describe('Where accounts and module data are stored.'),
    modules: moduleTables.prefault({})
      .describe('Feature modules, one [modules.<name>] table each, applying to every host.'),
    host_config: z.array(z.object({
      host: domainSchema.describe('The domain these settings apply to; one of general.hosts.'),
      modules: moduleTables.prefault({})
        .describe('Module tables for this host: a [host_config.modules.<name>] table replaces the global [modules.<name>] table entirely (set enabled = false to switch a module off on this host).'),
    }).strict()).default([])
      .describe('Per-host overrides, one [[host_config]] table per domain.'),
  }).strict().superRefine((config, ctx) => {
    const hosts = new Set(config.general.hosts);
    const seen = new Map<string, number>();
    config.host_config.forEach((entry, index) => {
      if (!hosts.has(entry.host)) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry.host)} is not one of general.hosts`, path: ['host_config', index, 'host'], input: entry.host });
      }
      const other = seen.get(entry.host);
      if (other !== undefined) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry.host)} already has host_config[${other}]`, path: ['host_config', index, 'host'], input: entry.host });
      }
      seen.set(entry.host, index);
    });
  });
}

export const configSchema = buildConfigSchema(allModules);

export type Config = z.output<typeof configSchema>;
