/**
 * `npm run bench`: the benchmark orchestrator. It starts the server(s) under test (pinned to
 * core 0), provisions accounts, and for every scenario variant starts a load-generator
 * process (bench/generator.ts, pinned to core 1) and collects its figures. Each variant
 * prints one JSON line prefixed `BENCH ` and a table; a run over several targets (--peers)
 * ends with one comparison table. See `npm run bench -- --help` and docs/benchmarks.md.
 */
import { appendFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { HELP, parseOptions, type BenchOptions } from './lib/options.ts';
import { scenarios } from './scenarios/index.ts';
import { PeerTarget, RemoteTarget, loadPeers, type Target } from './lib/targets.ts';
import { canPin, machineInfo, spawnPinned } from './lib/proc.ts';
import { block, comparison, table } from './lib/report.ts';
import { fmt, num, type Endpoint, type Figures, type ScenarioResult } from './lib/scenario.ts';
import { chatBaseline, chatCost } from './scenarios/chat.ts';
import { redactUrl } from './lib/postgres.ts';
import type { GeneratorJob } from './generator.ts';
import os from 'node:os';

const GENERATOR = fileURLToPath(new URL('./generator.ts', import.meta.url));

let options: BenchOptions;
try {
  const parsed = parseOptions(process.argv.slice(2));
  if (parsed === 'help') {
    process.stdout.write(HELP);
    process.exit(0);
  }
  options = parsed;
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n\n${HELP}`);
  process.exit(2);
}

const t0 = performance.now();
const log = (message: string) => {
  if (!options.quiet) process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${message.replace(/^\n/, '')}\n`);
};
const print = (text: string) => { if (!options.quiet) process.stdout.write(`${text}\n`); };

for (const name of options.scenarios) {
  if (scenarios[name] === undefined) {
    process.stderr.write(`bench: unknown scenario '${name}' (known: ${Object.keys(scenarios).join(', ')})\n`);
    process.exit(2);
  }
}
const selected = options.scenarios.map((name) => scenarios[name]);
for (const scenario of selected) {
  try {
    scenario.variants(options);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(2);
  }
}
const perTarget = selected.filter((s) => !s.targetIndependent);
const independent = selected.filter((s) => s.targetIndependent);
const accounts = Math.max(1, ...perTarget.map((s) => s.accounts(options)));
if (!options.pin || !canPin()) log('bench: not pinning (taskset missing, one core, or --no-pin): figures are less repeatable');

async function makeTargets(): Promise<Target[]> {
  if (options.host !== undefined) return [new RemoteTarget(options, log)];
  const names = options.peers ? (options.only ?? ['meerkat', 'prosody', 'ejabberd']) : ['meerkat'];
  const targets: Target[] = [];
  for (const name of names) {
    if (name === 'meerkat') {
      const { MeerkatTarget } = await import('./lib/meerkat.ts');
      targets.push(new MeerkatTarget(options, log));
    } else if (name === 'prosody' || name === 'ejabberd') {
      targets.push(new PeerTarget(name, loadPeers(options.peersDir, log), options, log));
    } else {
      throw new Error(`--only: unknown target '${name}'`);
    }
  }
  return targets;
}

/** Runs one scenario variant in a fresh generator process pinned to core 1. */
function runGenerator(job: GeneratorJob): Promise<Figures> {
  return new Promise((resolve) => {
    const child = spawnPinned(options.pin ? 1 : undefined, process.execPath, ['--import', 'tsx', GENERATOR], {
      cwd: path.dirname(GENERATOR),
      env: { ...process.env, MEERKAT_BENCH_JOB: JSON.stringify(job) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.once('exit', (code) => {
      const result = /^RESULT (.*)$/m.exec(out);
      if (result !== null) return resolve(JSON.parse(result[1]) as Figures);
      const error = /^ERROR (.*)$/m.exec(out);
      resolve({ error: error !== null ? (JSON.parse(error[1]) as { message: string }).message : `generator exited with ${code}` });
    });
  });
}

const results: (ScenarioResult & { version: string })[] = [];
const machine = machineInfo(options.pin);

function record(target: string, version: string, scenario: string, variant: string, figures: Figures): void {
  const entry = { scenario, variant, target, version, figures };
  results.push(entry);
  const line = JSON.stringify({ scenario, variant, target, version, time: new Date().toISOString(), loadavg1: Math.round(os.loadavg()[0] * 100) / 100, ...figures });
  process.stdout.write(`BENCH ${line}\n`);
  if (options.json !== undefined) appendFileSync(options.json, `${line}\n`);
  const title = `${scenario} / ${variant} — ${target} ${version}`;
  print('error' in figures ? block(title, [['error', String(figures.error)]])
    : 'skipped' in figures ? block(title, [['skipped', String(figures.skipped)]])
      : block(title, scenarios[scenario].rows(figures)));
}

/**
 * Summarises the main-thread profiles Meerkat just wrote into `dir` (names end in
 * .<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread, the others are tsx's loader
 * worker): one summary per scenario variant that reports its measured window (login, chat, archive),
 * cut to that window, so start-up, warm-up passes and the other variants stay out; the whole
 * run when no variant reports a window.
 */
async function summariseProfile(dir: string, since: number, top: number): Promise<void> {
  const { loadProfile, summarise, render } = await import('./cpuprofile-summary.ts');
  const files = readdirSync(dir)
    .filter((f) => /\.0\.\d+\.cpuprofile$/.test(f))
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).mtimeMs >= since)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (files.length === 0) {
    log(`no main-thread .cpuprofile in ${dir} (did the server exit cleanly?)`);
    return;
  }
  const profiles = files.map((file) => ({ file, profile: loadProfile(file) }));
  const windowed = results.filter((r) => r.target === 'meerkat' && Array.isArray(r.figures.windowMonotonicUs));
  const jobs = windowed.length === 0
    ? [{ scope: 'whole run', window: undefined, ...profiles[0] }]
    : windowed.map((r) => {
      const window = r.figures.windowMonotonicUs as [number, number];
      // Each server start wrote its own profile: take the one that covers the window.
      const covering = profiles.find(({ profile }) => profile.startTime <= window[0] && profile.endTime >= window[1]) ?? profiles[0];
      return { scope: `${r.scenario}/${r.variant} measured window only`, window, ...covering };
    });
  for (const { scope, window, file, profile } of jobs) {
    const summary = summarise(profile, top, window);
    process.stdout.write(`BENCH ${JSON.stringify({ scenario: 'cpu-profile', target: 'meerkat', file, scope, window, ...summary })}\n`);
    print(`\nCPU profile of meerkat, ${scope} (${file})\n${render(summary)}\n`);
  }
}

let current: Target | undefined;
const onSignal = () => {
  log('bench: interrupted, stopping the server under test');
  void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

print(`Meerkat benchmark — node ${machine.node}, ${machine.cores} cores (${machine.cpu}), ${machine.memGiB} GiB, pinning: ${machine.pinned}, load average ${machine.loadavg1}`);
process.stdout.write(`BENCH ${JSON.stringify({ machine, options: { ...options, postgresUrl: redactUrl(options.postgresUrl) }, time: new Date().toISOString() })}\n`);

const targets = await makeTargets();
for (const target of targets) {
  current = target;
  const targetStarted = Date.now();
  log(`\n== ${target.name} ${target.version}: starting with ${accounts} accounts`);
  try {
    await target.start(accounts);
    for (const scenario of perTarget) {
      for (const variant of scenario.variants(options)) {
        const setup = scenario.setup?.(variant, options);
        let prepared: { figures: Figures; handoff?: unknown } | undefined;
        try {
          if (setup !== undefined) {
            if (target.startWithSetup === undefined) {
              record(target.name, target.version, scenario.name, variant, { skipped: 'Meerkat only: the variant needs a server set up by the bench' });
              continue;
            }
            log(`${target.name}: starting on a fresh ${setup.storage} database for ${scenario.name}/${variant}`);
            const outcome = await target.startWithSetup(setup, scenario.accounts(options), `${scenario.name}/${variant}`);
            if ('skipped' in outcome) {
              log(`${target.name}: ${scenario.name}/${variant} skipped: ${outcome.skipped}`);
              record(target.name, target.version, scenario.name, variant, { skipped: outcome.skipped });
              continue;
            }
            prepared = outcome;
          } else {
            const restarted = (await target.ensureDefault?.()) ?? false;
            if (!restarted && scenario.freshServer && target.managed && options.restart) {
              log(`${target.name}: restarting for a fresh ${scenario.name}/${variant} measurement`);
              await target.restart();
            }
          }
        } catch (err) {
          log(`${target.name}: ${scenario.name}/${variant}: ${(err as Error).message}`);
          record(target.name, target.version, scenario.name, variant, { error: `set-up: ${(err as Error).message.split('\n')[0]}` });
          continue;
        }
        log(`${target.name}: ${scenario.name}/${variant}`);
        const figures = await runGenerator({ scenario: scenario.name, variant, endpoint: target.endpoint(), options, prepared: prepared?.handoff });
        if (scenario.freshServer && setup === undefined && !(target.managed && options.restart)) figures.freshServer = false;
        record(target.name, target.version, scenario.name, variant, { ...prepared?.figures, ...figures });
      }
    }
  } catch (err) {
    log(`${target.name}: ${(err as Error).message}`);
    record(target.name, target.version, 'setup', 'start', { error: (err as Error).message.split('\n')[0] });
  } finally {
    await target.stop();
    current = undefined;
  }
  if (options.cpuProf !== undefined && target.name === 'meerkat') await summariseProfile(options.cpuProf, targetStarted, options.profileTop);
}

for (const scenario of independent) {
  for (const variant of scenario.variants(options)) {
    const endpoint: Endpoint = { target: scenario.name, host: '127.0.0.1', domain: options.domain, plainPort: 0, tlsPort: 0, userPrefix: '', password: '', accounts: 0 };
    log(`${scenario.name}/${variant}`);
    record(scenario.name, '-', scenario.name, variant, await runGenerator({ scenario: scenario.name, variant, endpoint, options }));
  }
}

// Chat throughput as a fraction of the relay ceiling.
const measured = (r: ScenarioResult) => !('error' in r.figures) && !('skipped' in r.figures);
const relay = results.find((r) => r.scenario === 'relay' && measured(r));
const ceiling = relay === undefined ? NaN : num(relay.figures, 'msgsPerSec');
const ofRelay = (r: ScenarioResult): Record<string, string> =>
  r.scenario === 'chat' && measured(r) && Number.isFinite(ceiling) ? { 'of relay': `${fmt((num(r.figures, 'msgsPerSec') / ceiling) * 100)}%` } : {};
if (Number.isFinite(ceiling)) {
  for (const r of results.filter((x) => x.scenario === 'chat' && measured(x))) {
    const fraction = Math.round((num(r.figures, 'msgsPerSec') / ceiling) * 1000) / 1000;
    process.stdout.write(`BENCH ${JSON.stringify({ scenario: 'chat-vs-relay', variant: r.variant, target: r.target, chatMsgsPerSec: r.figures.msgsPerSec, relayMsgsPerSec: ceiling, fraction })}\n`);
  }
}
// Chat variants with stream management or the archive against their transport alone.
const costRows: string[][] = [];
for (const r of results.filter((x) => x.scenario === 'chat' && measured(x))) {
  const baseline = chatBaseline(r.variant);
  const base = results.find((x) => x.scenario === 'chat' && x.target === r.target && x.variant === baseline && measured(x));
  if (baseline === undefined || base === undefined) continue;
  const cost = chatCost(r.figures, base.figures);
  process.stdout.write(`BENCH ${JSON.stringify({ scenario: 'chat-cost', variant: r.variant, baseline, target: r.target, ...cost })}\n`);
  const pct = (x: unknown) => (typeof x === 'number' ? `${fmt(x)} %` : '-');
  costRows.push([
    r.target, `${r.variant} vs ${baseline}`, fmt(cost.msgsPerSec), fmt(cost.baseMsgsPerSec), pct(cost.throughputCostPct),
    `${fmt(cost.p50Ms, 2)} / ${fmt(cost.baseP50Ms, 2)}`, `${fmt(cost.p99Ms, 2)} / ${fmt(cost.baseP99Ms, 2)}`,
    `${fmt(cost.serverCpuUsPerMsg, 2)} / ${fmt(cost.baseServerCpuUsPerMsg, 2)}`, pct(cost.cpuPerMsgCostPct),
  ]);
}
if (costRows.length > 0) {
  print(`\nChat variants against their baseline (throughput cost: share of the baseline's msgs/s lost)\n${'═'.repeat(20)}\n${table(
    ['target', 'variant', 'msgs/s', 'baseline msgs/s', 'throughput cost', 'p50 ms (vs base)', 'p99 ms (vs base)', 'CPU µs/msg (vs base)', 'CPU/msg cost'],
    costRows,
  )}\n`);
}

const comparable = results.filter((r) => r.scenario !== 'setup');
if (comparable.length > 0) print(`\nSummary${targets.length > 1 ? ' (all targets)' : ''}\n${'═'.repeat(20)}${comparison(comparable, scenarios, ofRelay)}\n`);
process.exit(results.some((r) => 'error' in r.figures) ? 1 : 0);
