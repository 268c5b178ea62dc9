/**
 * The load generator process: runs one variant of one scenario against one endpoint and
 * prints its figures as `RESULT <json>` on stdout. bench/run.ts starts it pinned to core 1,
 * with the job as JSON in MEERKAT_BENCH_JOB; it never runs inside the server's process.
 */
import { scenarios } from './scenarios/index.ts';
import type { BenchOptions } from './lib/options.ts';
import type { Endpoint } from './lib/scenario.ts';

export interface GeneratorJob {
  scenario: string;
  variant: string;
  endpoint: Endpoint;
  options: BenchOptions;
  /** What the variant's set-up handed over (VariantSetup.prepare), if anything. */
  prepared?: unknown;
}

const raw = process.env.MEERKAT_BENCH_JOB;
if (raw === undefined) {
  process.stderr.write('generator.ts is started by bench/run.ts (MEERKAT_BENCH_JOB is not set)\n');
  process.exit(2);
}
const job = JSON.parse(raw) as GeneratorJob;
const scenario = scenarios[job.scenario];
if (scenario === undefined) {
  process.stderr.write(`unknown scenario ${job.scenario}\n`);
  process.exit(2);
}
const label = `[${job.endpoint.target} ${job.scenario}/${job.variant}]`;
const log = (message: string) => { if (!job.options.quiet) process.stderr.write(`${label} ${message}\n`); };

try {
  const figures = await scenario.run({ endpoint: job.endpoint, options: job.options, variant: job.variant, prepared: job.prepared, log });
  process.stdout.write(`RESULT ${JSON.stringify(figures)}\n`, () => process.exit(0));
} catch (err) {
  process.stdout.write(`ERROR ${JSON.stringify({ message: (err as Error).message ?? String(err) })}\n`, () => process.exit(1));
}
