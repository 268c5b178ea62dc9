/**
 * chat: P pairs of online users (2P connections, initial presence sent) exchange one-to-one
 * messages addressed to each other's full JID, W in flight per pair, for D seconds after a
 * warm-up. Reports delivered messages per second, latency percentiles, and lost and
 * duplicated messages (see lib/chat-load.ts). Variants: `plain` (no TLS) and `tls`. A server
 * the bench manages is restarted first: what earlier scenarios left behind (a thousand
 * connections just dropped by the idle scenario) must not slow it down.
 */
import { login, type XmppConnection } from '../lib/client.ts';
import { chatRows, runChatLoad, type ChatPeer } from '../lib/chat-load.ts';
import { runPool, FailureCounter } from '../lib/pool.ts';
import { sleep } from '../lib/proc.ts';
import { fmt, type Scenario } from '../lib/scenario.ts';

function peer(conn: XmppConnection): ChatPeer {
  return {
    address: conn.jid,
    send: (data) => conn.send(data),
    listen: (handler) => { conn.onElement = handler; },
  };
}

const scenario: Scenario = {
  name: 'chat',
  description: 'P pairs, W in flight, D seconds: msgs/s, latency, loss',
  variants: (options) => options.chatVariants,
  accounts: (options) => 2 * options.pairs,
  freshServer: true,
  async run(ctx) {
    const { endpoint, options, variant } = ctx;
    const tls = variant === 'tls';
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
      throw new Error(`chat: ${failures.total} of ${count} logins failed ${JSON.stringify(failures.byReason)}`);
    }
    await sleep(500); // presence echoes settle
    const pairs = [];
    for (let p = 0; p < options.pairs; p++) pairs.push({ a: peer(connections[2 * p]), b: peer(connections[2 * p + 1]) });
    const figures = await runChatLoad(pairs, {
      window: options.window,
      durationS: options.duration,
      warmupS: options.warmup,
      bodyBytes: options.bodyBytes,
      drainS: options.drain,
      serverPid: endpoint.pid,
      log: ctx.log,
    });
    for (const conn of connections) conn.close();
    return { ...figures, disconnects };
  },
  rows(f) {
    return [...chatRows(f), ['disconnects', fmt(f.disconnects)]];
  },
  headline(f) {
    const l = f.latencyMs as Record<string, number>;
    return { 'msgs/s': fmt(f.msgsPerSec), 'p50 ms': fmt(l.p50, 2), 'p99 ms': fmt(l.p99, 2), lost: fmt(f.lost), dup: fmt(f.duplicated), 'CPU µs/msg': fmt(f.serverCpuUsPerMsg, 2) };
  },
};

export default scenario;
