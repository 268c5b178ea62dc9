/**
 * login: N accounts log in (connect, [STARTTLS,] SASL, bind), C at a time, then close.
 * Variants: `scram-tls` (STARTTLS + SCRAM-SHA-256, SCRAM-SHA-1 where that is all the server
 * offers) and `plain` (SASL PLAIN without TLS). A warm-up pass first logs every account in
 * once, untimed, so the clients hold their SCRAM salted passwords as real clients do and the
 * generator does not spend the timed pass in PBKDF2 (--login-cold skips it).
 */
import { login } from '../lib/client.ts';
import { runPool, FailureCounter } from '../lib/pool.ts';
import { CpuMeter } from '../lib/proc.ts';
import { scramCost, setSaltedPasswordCache } from '../lib/scram.ts';
import { Histogram, round } from '../lib/stats.ts';
import { fmt, num, type Figures, type RunContext, type Scenario } from '../lib/scenario.ts';

async function pass(ctx: RunContext, timed: boolean): Promise<Figures> {
  const { endpoint, options, variant } = ctx;
  const tls = variant === 'scram-tls';
  const histogram = new Histogram();
  const failures = new FailureCounter();
  const mechanisms = new Set<string>();
  const n = options.loginN;
  const meter = new CpuMeter(endpoint.pid);
  const started = performance.now();
  const monotonicStart = Number(process.hrtime.bigint() / 1000n);
  await runPool(n, options.loginC, async (i) => {
    const t0 = performance.now();
    try {
      const conn = await login({
        host: endpoint.host,
        port: tls ? endpoint.tlsPort : endpoint.plainPort,
        domain: endpoint.domain,
        username: `${endpoint.userPrefix}${(i % endpoint.accounts) + 1}`,
        password: endpoint.password,
        starttls: tls,
        auth: tls ? 'SCRAM' : 'PLAIN',
        resource: `login${i}`,
        timeoutMs: options.timeoutMs,
      });
      histogram.record(performance.now() - t0);
      mechanisms.add(conn.mechanism);
      conn.close();
    } catch (err) {
      failures.add(err);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  const monotonicEnd = Number(process.hrtime.bigint() / 1000n);
  if (!timed) return {};
  const latency = histogram.summary();
  const cpu = meter.read();
  return {
    n,
    concurrency: options.loginC,
    mechanism: [...mechanisms].join(','),
    ok: histogram.count,
    failures: failures.total,
    failureReasons: failures.byReason,
    seconds: round(seconds),
    loginsPerSec: round(histogram.count / seconds, 1),
    latencyMs: latency,
    ...cpu,
    // Server CPU per login: less disturbed by other load on the machine than logins/s.
    serverCpuMsPerLogin: cpu.serverCpuS === null || histogram.count === 0 ? null : round((cpu.serverCpuS * 1000) / histogram.count, 3),
    windowMonotonicUs: [monotonicStart, monotonicEnd],
  };
}

const scenario: Scenario = {
  name: 'login',
  description: 'N logins, C concurrent: logins/s, latency, failures',
  variants: (options) => options.loginVariants,
  accounts: (options) => options.loginN,
  async run(ctx) {
    if (ctx.options.loginCold) setSaltedPasswordCache(false);
    else {
      ctx.log(`warm-up pass (${ctx.options.loginN} logins)`);
      await pass(ctx, false);
    }
    const pbkdf2Before = { ...scramCost };
    const figures = await pass(ctx, true);
    figures.clientPbkdf2Ms = round(scramCost.pbkdf2Ms - pbkdf2Before.pbkdf2Ms, 1);
    figures.cold = ctx.options.loginCold;
    return figures;
  },
  rows(f) {
    const l = f.latencyMs as Record<string, number>;
    return [
      ['logins', `${fmt(f.ok)} ok, ${fmt(f.failures)} failed${num(f, 'failures') > 0 ? ` ${JSON.stringify(f.failureReasons)}` : ''}`],
      ['mechanism', String(f.mechanism || '-')],
      ['concurrency', fmt(f.concurrency)],
      ['logins/s', fmt(f.loginsPerSec)],
      ['latency ms', `p50 ${fmt(l.p50, 2)}  p99 ${fmt(l.p99, 2)}  max ${fmt(l.max, 2)}`],
      ['CPU % of a core', `server ${fmt(f.serverCpuPct)}  generator ${fmt(f.generatorCpuPct)}  other processes ${fmt(f.otherCpuPct)}`],
      ['server CPU per login', `${fmt(f.serverCpuMsPerLogin, 2)} ms`],
    ];
  },
  headline(f) {
    const l = f.latencyMs as Record<string, number>;
    return { 'logins/s': fmt(f.loginsPerSec), 'p50 ms': fmt(l.p50, 2), 'p99 ms': fmt(l.p99, 2), failed: fmt(f.failures), 'CPU ms/login': fmt(f.serverCpuMsPerLogin, 2) };
  },
};

export default scenario;
