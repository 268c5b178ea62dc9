/**
 * chat: P pairs of online users (2P connections, initial presence sent) exchange one-to-one
 * messages addressed to each other's full JID, W in flight per pair, for D seconds after a
 * warm-up. Reports delivered messages per second, latency percentiles, and lost and
 * duplicated messages (see lib/chat-load.ts). A server the bench manages is restarted first:
 * what earlier scenarios left behind (a thousand connections just dropped by the idle
 * scenario) must not slow it down.
 *
 * Variants are tokens joined by '+' (chatVariant below):
 *   plain | tls        the transport: no TLS and SASL PLAIN, or STARTTLS and SCRAM (default plain)
 *   sm                 every client enables XEP-0198 stream management (resume='true') after
 *                      binding and answers each of the server's <r/> with <a h/>, h counting
 *                      every stanza received since <enabled/>. At the end each client
 *                      acknowledges everything and sends <r/>: the server's 'h' must equal the
 *                      number of stanzas the client sent (smMismatches counts those that don't).
 *   archive-sqlite     Meerkat only: message archive on ([modules.mam] with its defaults) on
 *   archive-postgres   a fresh database of that backend, the accounts provisioned there
 * A variant with sm or archive is compared with its transport alone (its `baseline`, plain or
 * tls) when that ran too: run.ts reports the throughput cost in %, latencies and server CPU
 * per message side by side.
 */
import { login, type XmppConnection } from '../lib/client.ts';
import { chatRows, runChatLoad, type ChatPeer } from '../lib/chat-load.ts';
import { runPool, FailureCounter } from '../lib/pool.ts';
import { sleep } from '../lib/proc.ts';
import { fmt, num, type Figures, type Scenario } from '../lib/scenario.ts';

export interface ChatVariant {
  tls: boolean;
  sm: boolean;
  archive: 'sqlite' | 'postgres' | undefined;
}

/** Parses a chat variant name ('plain', 'tls+sm', 'archive-postgres', ...); throws on an unknown token. */
export function chatVariant(name: string): ChatVariant {
  const variant: ChatVariant = { tls: false, sm: false, archive: undefined };
  let transport: string | undefined;
  for (const token of name.split('+')) {
    if (token === 'plain' || token === 'tls') {
      if (transport !== undefined) throw new Error(`chat variant '${name}': more than one transport`);
      transport = token;
      variant.tls = token === 'tls';
    } else if (token === 'sm') {
      variant.sm = true;
    } else if (token === 'archive-sqlite' || token === 'archive-postgres') {
      if (variant.archive !== undefined) throw new Error(`chat variant '${name}': more than one archive`);
      variant.archive = token === 'archive-sqlite' ? 'sqlite' : 'postgres';
    } else {
      throw new Error(`chat variant '${name}': unknown token '${token}' (plain, tls, sm, archive-sqlite, archive-postgres, joined by '+')`);
    }
  }
  return variant;
}

/** The variant a variant is compared with: its transport alone; undefined for plain and tls themselves. */
export function chatBaseline(name: string): string | undefined {
  const v = chatVariant(name);
  if (!v.sm && v.archive === undefined) return undefined;
  return v.tls ? 'tls' : 'plain';
}

/**
 * A variant's cost against its baseline: throughput lost (%), latency and server CPU per
 * message of both. Positive costs are losses.
 */
export function chatCost(figures: Figures, base: Figures): Figures {
  const l = figures.latencyMs as Record<string, number>;
  const b = base.latencyMs as Record<string, number>;
  const rate = num(figures, 'msgsPerSec');
  const baseRate = num(base, 'msgsPerSec');
  const cpu = num(figures, 'serverCpuUsPerMsg');
  const baseCpu = num(base, 'serverCpuUsPerMsg');
  const pct = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 10 : null);
  return {
    msgsPerSec: rate,
    baseMsgsPerSec: baseRate,
    throughputCostPct: pct(1 - rate / baseRate),
    p50Ms: l.p50,
    baseP50Ms: b.p50,
    p99Ms: l.p99,
    baseP99Ms: b.p99,
    serverCpuUsPerMsg: Number.isFinite(cpu) ? cpu : null,
    baseServerCpuUsPerMsg: Number.isFinite(baseCpu) ? baseCpu : null,
    cpuPerMsgCostPct: pct(cpu / baseCpu - 1),
  };
}

/** `tap` (archive variants only, to keep it off the others' hot path) sees every element first. */
function peer(conn: XmppConnection, tap?: (raw: string, name: string) => void): ChatPeer {
  return {
    address: conn.jid,
    send: (data) => conn.sendStanza(data),
    listen: (handler) => {
      conn.onElement = tap === undefined ? handler : (raw, name) => { tap(raw, name); handler(raw, name); };
    },
  };
}

const scenario: Scenario = {
  name: 'chat',
  description: 'P pairs, W in flight, D seconds: msgs/s, latency, loss',
  variants: (options) => {
    for (const v of options.chatVariants) chatVariant(v);
    return options.chatVariants;
  },
  accounts: (options) => 2 * options.pairs,
  freshServer: true,
  setup(variant) {
    const { archive } = chatVariant(variant);
    return archive === undefined ? undefined : { storage: archive, config: { modules: { mam: { enabled: true } } } };
  },
  async run(ctx) {
    const { endpoint, options, variant } = ctx;
    const { tls, sm, archive } = chatVariant(variant);
    const count = 2 * options.pairs;
    const connections: XmppConnection[] = new Array(count);
    const failures = new FailureCounter();
    let disconnects = 0;
    await runPool(count, options.idleC, async (i) => {
      try {
        const conn = await login({
          host: endpoint.host,
          port: tls ? endpoint.tlsPort : endpoint.plainPort,
          domain: endpoint.domain,
          username: `${endpoint.userPrefix}${(i % endpoint.accounts) + 1}`,
          password: endpoint.password,
          starttls: tls,
          auth: tls ? 'SCRAM' : 'PLAIN',
          resource: 'chat',
          presence: true,
          sm,
          timeoutMs: options.timeoutMs,
        });
        conn.onElement = () => undefined;
        conn.onClose = () => { disconnects++; };
        connections[i] = conn;
      } catch (err) {
        failures.add(err);
      }
    });
    if (failures.total > 0) {
      for (const conn of connections) conn?.destroy();
      if (failures.byReason['no-sm'] === failures.total) return { skipped: 'the server does not offer stream management (urn:xmpp:sm:3)' };
      throw new Error(`chat: ${failures.total} of ${count} logins failed ${JSON.stringify(failures.byReason)}`);
    }
    await sleep(500); // presence echoes settle
    // With the archive on, every message delivered must carry the recipient's <stanza-id/>.
    let stamped = 0;
    const tap = archive === undefined ? undefined : (raw: string, name: string) => {
      if (name === 'message' && raw.includes('urn:xmpp:sid:0')) stamped++;
    };
    const pairs = [];
    for (let p = 0; p < options.pairs; p++) pairs.push({ a: peer(connections[2 * p], tap), b: peer(connections[2 * p + 1], tap) });
    const figures = await runChatLoad(pairs, {
      window: options.window,
      durationS: options.duration,
      warmupS: options.warmup,
      bodyBytes: options.bodyBytes,
      drainS: options.drain,
      serverPid: endpoint.pid,
      log: ctx.log,
    });
    const smFigures: Figures = {};
    if (sm) {
      // Acknowledge everything and ask for the server's count: it must equal what each client sent.
      let mismatches = 0;
      let requests = 0;
      const problems: string[] = [];
      await Promise.all(connections.map(async (conn) => {
        requests += conn.sm?.requests ?? 0;
        try {
          const h = await conn.smSync();
          if (h !== conn.sm!.sent) {
            mismatches++;
            if (problems.length < 5) problems.push(`${conn.jid}: server h=${h}, sent ${conn.sm!.sent}`);
          }
        } catch (err) {
          mismatches++;
          if (problems.length < 5) problems.push(`${conn.jid}: ${(err as Error).message}`);
        }
      }));
      Object.assign(smFigures, {
        smRequests: requests,
        smRequestsPerMsg: figures.received === 0 ? null : Math.round((requests / figures.received) * 1000) / 1000,
        smMismatches: mismatches,
        smProblems: problems,
      });
    }
    for (const conn of connections) conn.close();
    return { ...figures, ...smFigures, ...(archive === undefined ? {} : { withStanzaId: stamped }), disconnects };
  },
  rows(f) {
    const rows: [string, string][] = [...chatRows(f), ['disconnects', fmt(f.disconnects)]];
    if (f.withStanzaId !== undefined) rows.push(['archived (stanza-id)', `${fmt(f.withStanzaId)} of ${fmt(f.received)} messages received`]);
    if (f.smRequests !== undefined) {
      rows.push(['stream management', `${fmt(f.smRequests)} <r/> answered (${fmt(f.smRequestsPerMsg, 3)} per message received); final 'h' wrong on ${fmt(f.smMismatches)} streams${Number(f.smMismatches) > 0 ? ` ${JSON.stringify(f.smProblems)}` : ''}`]);
    }
    return rows;
  },
  headline(f) {
    const l = f.latencyMs as Record<string, number>;
    return { 'msgs/s': fmt(f.msgsPerSec), 'p50 ms': fmt(l.p50, 2), 'p99 ms': fmt(l.p99, 2), lost: fmt(f.lost), dup: fmt(f.duplicated), 'CPU µs/msg': fmt(f.serverCpuUsPerMsg, 2) };
  },
};

export default scenario;
