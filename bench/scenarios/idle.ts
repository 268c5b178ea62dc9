/**
 * idle: N connections log in, send initial presence and stay idle. The server's resident
 * memory (VmRSS from /proc/<pid>/status) is read before the first connection and again
 * after a settle time; the difference over N is the cost of one idle connection.
 * Variants: `plain` (PLAIN, no TLS) and `tls` (STARTTLS + SCRAM). A server the bench manages
 * is restarted before each variant so that one variant's heap growth does not hide the
 * other's.
 */
import { login, type XmppConnection } from '../lib/client.ts';
import { runPool, FailureCounter } from '../lib/pool.ts';
import { rssKb, sleep, statusKb } from '../lib/proc.ts';
import { round } from '../lib/stats.ts';
import { fmt, type Scenario } from '../lib/scenario.ts';

const scenario: Scenario = {
  name: 'idle',
  description: 'N idle logged-in connections: server RSS per connection',
  variants: (options) => options.idleVariants,
  accounts: (options) => options.idleN,
  freshServer: true,
  async run(ctx) {
    const { endpoint, options, variant } = ctx;
    const tls = variant === 'tls';
    const pid = endpoint.pid;
    await sleep(500);
    const before = pid === undefined ? undefined : rssKb(pid);
    const connections: XmppConnection[] = [];
    const failures = new FailureCounter();
    let dropped = 0;
    const started = performance.now();
    await runPool(options.idleN, options.idleC, async (i) => {
      try {
        const conn = await login({
          host: endpoint.host,
          port: tls ? endpoint.tlsPort : endpoint.plainPort,
          domain: endpoint.domain,
          username: `${endpoint.userPrefix}${(i % endpoint.accounts) + 1}`,
          password: endpoint.password,
          starttls: tls,
          auth: tls ? 'SCRAM' : 'PLAIN',
          resource: `idle${i}`,
          presence: true,
          timeoutMs: options.timeoutMs,
        });
        conn.onElement = () => undefined; // presence echoes, pings are not answered: idle
        conn.onClose = () => { dropped++; };
        connections.push(conn);
      } catch (err) {
        failures.add(err);
      }
    });
    const connectSeconds = (performance.now() - started) / 1000;
    ctx.log(`${connections.length} connections open, settling ${options.idleSettle}s`);
    await sleep(options.idleSettle * 1000);
    const after = pid === undefined ? undefined : rssKb(pid);
    const peak = pid === undefined ? undefined : statusKb(pid, 'VmHWM');
    const open = connections.length - dropped;
    for (const conn of connections) conn.destroy();
    const delta = before === undefined || after === undefined ? undefined : after - before;
    return {
      n: options.idleN,
      open,
      failures: failures.total,
      failureReasons: failures.byReason,
      connectSeconds: round(connectSeconds, 2),
      rssBeforeKb: before ?? null,
      rssAfterKb: after ?? null,
      rssPeakKb: peak ?? null,
      bytesPerConnection: delta === undefined || open === 0 ? null : Math.round((delta * 1024) / open),
    };
  },
  rows(f) {
    return [
      ['connections', `${fmt(f.open)} open of ${fmt(f.n)}, ${fmt(f.failures)} failed`],
      ['connect time s', fmt(f.connectSeconds, 2)],
      ['server RSS MiB', f.rssBeforeKb === null ? 'unknown (no --pid)' : `${fmt(Number(f.rssBeforeKb) / 1024)} → ${fmt(Number(f.rssAfterKb) / 1024)} (peak ${fmt(Number(f.rssPeakKb) / 1024)})`],
      ['bytes / connection', f.bytesPerConnection === null ? '-' : `${fmt(f.bytesPerConnection)} (${fmt(Number(f.bytesPerConnection) / 1024)} KiB)`],
    ];
  },
  headline(f) {
    return { 'KiB/conn': f.bytesPerConnection === null ? '-' : fmt(Number(f.bytesPerConnection) / 1024), open: fmt(f.open) };
  },
};

export default scenario;
