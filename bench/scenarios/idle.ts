/**
 * idle: N connections log in, send initial presence and stay idle. The server's resident
 * memory (VmRSS from /proc/<pid>/status) is read before the first connection, after N/2 and
 * after N (each after a settle time): the growth over N is the average cost of an idle
 * connection, the growth over the second half its marginal cost.
 * Variants: `plain` (PLAIN, no TLS) and `tls` (STARTTLS + SCRAM). A server the bench manages
 * is restarted before each variant so that one variant's heap growth does not hide the
 * other's.
 */
import { login, type XmppConnection } from '../lib/client.ts';
import { runPool, FailureCounter } from '../lib/pool.ts';
import { rssKb, sleep, statusKb } from '../lib/proc.ts';
import { round } from '../lib/stats.ts';
import { fmt, type Scenario } from '../lib/scenario.ts';

const mib = (kb: unknown) => (typeof kb === 'number' ? fmt(kb / 1024) : '-');
const kib = (bytes: unknown) => (typeof bytes === 'number' ? fmt(bytes / 1024) : '-');

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
    const connect = async (i: number) => {
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
    };
    // Two halves, RSS after each: the second half's growth is the marginal cost of a
    // connection, free of one-off costs (code compiled, pools and heap spaces first grown).
    const half = Math.floor(options.idleN / 2);
    const started = performance.now();
    await runPool(half, options.idleC, (i) => connect(i));
    await sleep(options.idleSettle * 1000);
    const middle = pid === undefined ? undefined : rssKb(pid);
    const openAtMiddle = connections.length - dropped;
    await runPool(options.idleN - half, options.idleC, (i) => connect(half + i));
    const connectSeconds = (performance.now() - started) / 1000 - options.idleSettle;
    ctx.log(`${connections.length} connections open, settling ${options.idleSettle}s`);
    await sleep(options.idleSettle * 1000);
    const after = pid === undefined ? undefined : rssKb(pid);
    const peak = pid === undefined ? undefined : statusKb(pid, 'VmHWM');
    const open = connections.length - dropped;
    for (const conn of connections) conn.destroy();
    const perConnection = (fromKb: number | undefined, toKb: number | undefined, count: number) =>
      fromKb === undefined || toKb === undefined || count <= 0 ? null : Math.round(((toKb - fromKb) * 1024) / count);
    return {
      n: options.idleN,
      open,
      failures: failures.total,
      failureReasons: failures.byReason,
      connectSeconds: round(connectSeconds, 2),
      rssBeforeKb: before ?? null,
      rssMiddleKb: middle ?? null,
      rssAfterKb: after ?? null,
      rssPeakKb: peak ?? null,
      bytesPerConnection: perConnection(before, after, open),
      marginalBytesPerConnection: perConnection(middle, after, open - openAtMiddle),
    };
  },
  rows(f) {
    return [
      ['connections', `${fmt(f.open)} open of ${fmt(f.n)}, ${fmt(f.failures)} failed`],
      ['connect time s', fmt(f.connectSeconds, 2)],
      ['server RSS MiB', f.rssBeforeKb === null ? 'unknown (no --pid)' : `${mib(f.rssBeforeKb)} → ${mib(f.rssMiddleKb)} (N/2) → ${mib(f.rssAfterKb)} (N), peak ${mib(f.rssPeakKb)}`],
      ['bytes / connection', f.bytesPerConnection === null ? '-' : `${kib(f.bytesPerConnection)} KiB average, ${kib(f.marginalBytesPerConnection)} KiB marginal (second half)`],
    ];
  },
  headline(f) {
    return { 'KiB/conn': kib(f.bytesPerConnection), 'marginal KiB': kib(f.marginalBytesPerConnection), open: fmt(f.open) };
  },
};

export default scenario;
