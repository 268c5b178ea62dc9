/**
 * Command-line options of `npm run bench`: every knob, with small defaults so that a plain
 * `npm run bench` finishes in a couple of minutes on a laptop.
 */
import { parseArgs } from 'node:util';

export interface BenchOptions {
  scenarios: string[];
  // target
  host?: string;
  port?: number;
  tlsPort?: number;
  domain: string;
  pid?: number;
  provisioned: boolean;
  password: string;
  userPrefix: string;
  peers: boolean;
  peersDir: string;
  only?: string[];
  meerkatToml?: string;
  // login
  loginN: number;
  loginC: number;
  loginCold: boolean;
  loginVariants: string[];
  // idle
  idleN: number;
  idleC: number;
  idleSettle: number;
  idleVariants: string[];
  // chat and relay
  pairs: number;
  window: number;
  duration: number;
  warmup: number;
  bodyBytes: number;
  drain: number;
  chatVariants: string[];
  // archive
  archiveVariants: string[];
  archiveMessages: number;
  archiveBatch: number;
  archiveQueries: number;
  archiveOthers: number;
  /** PostgreSQL for the variants that use it (a fresh schema each, dropped afterwards). */
  postgresUrl: string;
  // run
  pin: boolean;
  restart: boolean;
  keep: boolean;
  cpuProf?: string;
  /** Functions listed per profile summary (--profile-top). */
  profileTop: number;
  json?: string;
  quiet: boolean;
  timeoutMs: number;
  provisionC: number;
}

export const HELP = `usage: npm run bench -- [options]

Runs load scenarios against Meerkat (started here, pinned to core 0), against any XMPP
server (--host/--port/--domain), or against Meerkat, Prosody and ejabberd in turn (--peers).
The load generator runs in its own process pinned to core 1. Each scenario variant prints a
JSON line (prefixed "BENCH ") and a table; several targets end with a comparison table.

scenarios (-s, --scenarios LIST; default login,idle,chat,relay,archive)
  login    N accounts log in, C at a time: logins/s, p50/p99, failures
           variants: scram-tls (STARTTLS + SCRAM-SHA-256, else -1) and plain (PLAIN, no TLS)
  idle     N connections logged in and idle: server RSS before, at N/2 and at N; average
           and marginal bytes per connection
           variants: plain and tls
  chat     P online pairs, W messages in flight per pair, D seconds: msgs/s, latency
           percentiles, lost and duplicated messages
           variants: tokens joined by '+': plain or tls (transport), sm (clients enable
           XEP-0198 stream management and answer the server's <r/>), archive-sqlite or
           archive-postgres (Meerkat only: [modules.mam] on, on a fresh database of that
           backend); e.g. plain, tls, sm, archive-sqlite, tls+sm+archive-postgres. Each
           variant with sm/archive is also reported against its transport alone (plain or
           tls): throughput cost in %, latency and server CPU per message
  relay    the chat load through a byte-forwarding TCP relay (no XMPP): the ceiling the
           generator can reach; chat throughput is reported as a fraction of it
  archive  Meerkat only. A fresh database of each backend is filled through the storage
           layer (ArchiveStore.append in batches, before the server starts) with an M-message
           conversation between user1 and user2 (both sides archived); then store-level
           figures (insert rate, query latency of 8 query kinds) and, over XMPP, latency of
           a MAM query (urn:xmpp:mam:2) for the last page (RSM <before/>) and for a deep page
           (RSM <after> an id 10-90 % into the conversation), 50 messages each
           variants: sqlite and postgres

target
  --host H --port P --domain D  any XMPP server (STARTTLS optional on P, PLAIN allowed
                                without TLS for the plain variants)
  --tls-port P                  a different port for the TLS variants (default --port)
  --pid PID                     that server's process, for memory and CPU figures
  --provisioned                 accounts user1..userN exist with --password; otherwise
                                they are created by XEP-0077 in-band registration
  --password PW                 (default "password")      --user-prefix S (default "user")
  --peers                       Meerkat, Prosody 0.12 and ejabberd 23 in one run
                                (bench/peers/setup.sh installs and configures them)
  --peers-dir DIR               (default /tmp/meerkat-bench-peers)
  --only LIST                   with --peers: only these of meerkat,prosody,ejabberd
  --meerkat-toml FILE           TOML merged over Meerkat's generated bench config

load knobs
  -n, --accounts N      login and idle N              (login 2000, idle 1000)
  -c, --concurrency C   login and connect concurrency (login 20, idle/chat connect 50)
  --login-n N  --login-c C  --login-cold (no warm-up: clients have no cached SCRAM keys)
  --login-variants LIST (default scram-tls,plain)
  --idle-n N  --idle-c C  --idle-settle S (seconds before reading RSS, default 3)
  --idle-variants LIST  (default plain,tls)
  -p, --pairs P         chat pairs (default 50)
  -w, --window W        messages in flight per pair (default 10)
  -d, --duration D      measured seconds (default 10)
  --warmup S            unmeasured seconds before (default 2)
  --body-bytes B        padding in each message body (default 64)
  --drain S             seconds to wait for in-flight messages at the end (default 5)
  --chat-variants LIST  (default plain,sm,archive-sqlite,archive-postgres; see chat above)
  --archive-variants LIST  sqlite and/or postgres (default sqlite,postgres)
  --archive-messages M  messages in the archived conversation, each archived by both
                        sides (default 100000)
  --archive-batch B     archived messages per ArchiveStore.append while filling (default 250)
  --archive-queries Q   timed queries per query kind, store-level and over XMPP (default 200)
  --archive-others N    first archive N messages of 1,000 other accounts, so the indexes
                        hold more than the one conversation (default 0)
  --postgres-url URL    PostgreSQL for archive-postgres and archive/postgres: a fresh schema
                        per variant, dropped afterwards (default $MEERKAT_BENCH_POSTGRES_URL,
                        else postgres://postgres@127.0.0.1:5432/test); variants needing it are
                        skipped when nothing listens there

run
  --no-pin              do not pin with taskset
  --no-restart          do not restart a server the bench manages before each idle and
                        chat variant (faster, but memory figures then include earlier
                        growth); variants with a database of their own (archive-*,
                        archive scenario) always start on a fresh server
  --cpu-prof DIR        run Meerkat under node --cpu-prof, profiles into DIR; prints one
                        summary per login/chat/archive variant, cut to its measured window
  --profile-top N       functions listed in each profile summary (default 25)
  --json FILE           also append the JSON lines to FILE
  --quiet               JSON lines only
  --keep                keep temporary data folders (and PostgreSQL schemas)
  --timeout MS          per protocol step (default 30000)
  --provision-c C       registration concurrency (default 20)
  -h, --help
`;

function list(value: string | undefined, fallback: string[]): string[] {
  return value === undefined ? fallback : value.split(',').map((s) => s.trim()).filter(Boolean);
}

function int(value: string | undefined, name: string, fallback: number): number;
function int(value: string | undefined, name: string, fallback: undefined): number | undefined;
function int(value: string | undefined, name: string, fallback: number | undefined): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a non-negative number, got '${value}'`);
  return n;
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      scenarios: { type: 'string', short: 's' },
      host: { type: 'string' },
      port: { type: 'string' },
      'tls-port': { type: 'string' },
      domain: { type: 'string' },
      pid: { type: 'string' },
      provisioned: { type: 'boolean' },
      password: { type: 'string' },
      'user-prefix': { type: 'string' },
      peers: { type: 'boolean' },
      'peers-dir': { type: 'string' },
      only: { type: 'string' },
      'meerkat-toml': { type: 'string' },
      accounts: { type: 'string', short: 'n' },
      concurrency: { type: 'string', short: 'c' },
      'login-n': { type: 'string' },
      'login-c': { type: 'string' },
      'login-cold': { type: 'boolean' },
      'login-variants': { type: 'string' },
      'idle-n': { type: 'string' },
      'idle-c': { type: 'string' },
      'idle-settle': { type: 'string' },
      'idle-variants': { type: 'string' },
      pairs: { type: 'string', short: 'p' },
      window: { type: 'string', short: 'w' },
      duration: { type: 'string', short: 'd' },
      warmup: { type: 'string' },
      'body-bytes': { type: 'string' },
      drain: { type: 'string' },
      'chat-variants': { type: 'string' },
      'archive-variants': { type: 'string' },
      'archive-messages': { type: 'string' },
      'archive-batch': { type: 'string' },
      'archive-queries': { type: 'string' },
      'archive-others': { type: 'string' },
      'postgres-url': { type: 'string' },
      'no-pin': { type: 'boolean' },
      'no-restart': { type: 'boolean' },
      'cpu-prof': { type: 'string' },
      'profile-top': { type: 'string' },
      json: { type: 'string' },
      quiet: { type: 'boolean' },
      keep: { type: 'boolean' },
      timeout: { type: 'string' },
      'provision-c': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const n = int(values.accounts, 'accounts', undefined);
  const c = int(values.concurrency, 'concurrency', undefined);
  const options: BenchOptions = {
    scenarios: list(values.scenarios, ['login', 'idle', 'chat', 'relay', 'archive']),
    host: values.host,
    port: int(values.port, 'port', undefined),
    tlsPort: int(values['tls-port'], 'tls-port', undefined),
    domain: values.domain ?? 'localhost',
    pid: int(values.pid, 'pid', undefined),
    provisioned: values.provisioned ?? false,
    password: values.password ?? 'password',
    userPrefix: values['user-prefix'] ?? 'user',
    peers: values.peers ?? false,
    peersDir: values['peers-dir'] ?? process.env.MEERKAT_BENCH_PEERS ?? '/tmp/meerkat-bench-peers',
    only: values.only === undefined ? undefined : list(values.only, []),
    meerkatToml: values['meerkat-toml'],
    loginN: int(values['login-n'], 'login-n', n ?? 2000),
    loginC: Math.max(1, int(values['login-c'], 'login-c', c ?? 20)),
    loginCold: values['login-cold'] ?? false,
    loginVariants: list(values['login-variants'], ['scram-tls', 'plain']),
    idleN: int(values['idle-n'], 'idle-n', n ?? 1000),
    idleC: Math.max(1, int(values['idle-c'], 'idle-c', c ?? 50)),
    idleSettle: int(values['idle-settle'], 'idle-settle', 3),
    idleVariants: list(values['idle-variants'], ['plain', 'tls']),
    pairs: Math.max(1, int(values.pairs, 'pairs', 50)),
    window: Math.max(1, int(values.window, 'window', 10)),
    duration: int(values.duration, 'duration', 10),
    warmup: int(values.warmup, 'warmup', 2),
    bodyBytes: int(values['body-bytes'], 'body-bytes', 64),
    drain: int(values.drain, 'drain', 5),
    chatVariants: list(values['chat-variants'], ['plain', 'sm', 'archive-sqlite', 'archive-postgres']),
    archiveVariants: list(values['archive-variants'], ['sqlite', 'postgres']),
    archiveMessages: Math.max(1, int(values['archive-messages'], 'archive-messages', 100_000)),
    archiveBatch: Math.max(1, int(values['archive-batch'], 'archive-batch', 250)),
    archiveQueries: Math.max(1, int(values['archive-queries'], 'archive-queries', 200)),
    archiveOthers: int(values['archive-others'], 'archive-others', 0),
    postgresUrl: values['postgres-url'] ?? process.env.MEERKAT_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    pin: !(values['no-pin'] ?? false),
    restart: !(values['no-restart'] ?? false),
    keep: values.keep ?? false,
    cpuProf: values['cpu-prof'],
    profileTop: Math.max(1, int(values['profile-top'], 'profile-top', 25)),
    json: values.json,
    quiet: values.quiet ?? false,
    timeoutMs: int(values.timeout, 'timeout', 30_000),
    provisionC: Math.max(1, int(values['provision-c'], 'provision-c', 20)),
  };
  if (options.host !== undefined && options.port === undefined) throw new Error('--host needs --port');
  if (options.host !== undefined && options.peers) throw new Error('--peers and --host exclude each other');
  return options;
}
