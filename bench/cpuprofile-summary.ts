/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): where the CPU went, by function
 * (self time and total time including callees) and by source area (our src/ folders,
 * dependencies, Node internals, GC). Idle time is left out of the percentages.
 *
 * `window` restricts it to samples taken between two CLOCK_MONOTONIC instants in
 * microseconds (V8's profile timestamps use that clock, as does process.hrtime), such as
 * the chat scenario's measured window, so start-up and module loading stay out.
 *
 * usage: node --import tsx bench/cpuprofile-summary.ts FILE.cpuprofile [--top N] [--window START_US,END_US] [--json]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionCost {
  name: string;
  where: string;
  area: string;
  selfMs: number;
  selfPct: number;
  totalMs: number;
  totalPct: number;
}

export interface ProfileSummary {
  durationMs: number;
  busyMs: number;
  idleMs: number;
  gcMs: number;
  functions: FunctionCost[];
  /** Our own code (src/) by total time: which of our functions the cost sits under. */
  own: FunctionCost[];
  areas: { area: string; selfMs: number; selfPct: number }[];
}

const REPO = fileURLToPath(new URL('..', import.meta.url));

function relative(url: string): string {
  if (url === '') return '';
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  return file.startsWith(REPO) ? path.relative(REPO, file) : file;
}

/** The area a frame belongs to: src/<folder>, a dependency, node internals, or a V8 pseudo-frame. */
function areaOf(frame: CallFrame): string {
  const name = frame.functionName;
  if (frame.url === '') {
    if (name === '(garbage collector)') return 'GC';
    if (name === '(idle)') return 'idle';
    if (name === '(program)') return 'V8/native (program)';
    return 'V8/native';
  }
  const file = relative(frame.url);
  if (file.startsWith('node:')) return `node:${file.slice(5).split('/')[1] ?? file.slice(5)}`.replace(/^node:internal\//, 'node:');
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (dep !== null) return `dep:${dep[1]}`;
  const src = /^(src|bin|bench)\/([^/]+)/.exec(file);
  if (src !== null) return src[2].endsWith('.ts') || src[2].endsWith('.js') ? `${src[1]}/${src[2]}` : `${src[1]}/${src[2]}/`;
  return file;
}

export function summarise(profile: CpuProfile, top = 25, window?: [number, number]): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  // Self time per node from the sample stream (each delta belongs to the sample it precedes).
  const selfUs = new Map<number, number>();
  let at = profile.startTime;
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (window !== undefined && (at < window[0] || at > window[1])) continue;
    first = Math.min(first, at);
    last = Math.max(last, at);
    const delta = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + Math.max(0, delta));
  }

  const keyOf = (frame: CallFrame) => `${frame.functionName || '(anonymous)'}\u0000${frame.url}\u0000${frame.lineNumber}`;
  const fnSelf = new Map<string, number>();
  const fnTotal = new Map<string, number>();
  const frames = new Map<string, CallFrame>();
  const areaSelf = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  let all = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    all += us;
    const area = areaOf(frame);
    if (area === 'idle') {
      idle += us;
      continue;
    }
    if (area === 'GC') gc += us;
    const key = keyOf(frame);
    frames.set(key, frame);
    fnSelf.set(key, (fnSelf.get(key) ?? 0) + us);
    areaSelf.set(area, (areaSelf.get(area) ?? 0) + us);
    // Total time: credit every distinct function on the stack once.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      if (f.functionName === '(root)') continue;
      const k = keyOf(f);
      if (seen.has(k)) continue;
      seen.add(k);
      frames.set(k, f);
      fnTotal.set(k, (fnTotal.get(k) ?? 0) + us);
    }
  }
  const busy = all - idle;
  const pct = (us: number) => (busy === 0 ? 0 : Math.round((us / busy) * 1000) / 10);
  const ms = (us: number) => Math.round(us / 100) / 10;
  const cost = (key: string): FunctionCost => {
    const frame = frames.get(key)!;
    const file = relative(frame.url);
    const self = fnSelf.get(key) ?? 0;
    const total = fnTotal.get(key) ?? self;
    return {
      name: frame.functionName || '(anonymous)',
      // Files run through tsx report line 1 (transpiled code): only real lines are shown.
      where: file === '' ? '' : frame.lineNumber > 0 ? `${file}:${frame.lineNumber + 1}` : file,
      area: areaOf(frame),
      selfMs: ms(self),
      selfPct: pct(self),
      totalMs: ms(total),
      totalPct: pct(total),
    };
  };
  const functions = [...fnSelf.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([key]) => cost(key));
  const own = [...fnTotal.entries()]
    .filter(([key]) => areaOf(frames.get(key)!).startsWith('src/'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, Math.min(top, 20))
    .map(([key]) => cost(key));
  const areas = [...areaSelf.entries()].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, selfMs: ms(us), selfPct: pct(us) }));
  const span = window === undefined ? profile.endTime - profile.startTime : Math.max(0, last - first);
  return { durationMs: ms(span), busyMs: ms(busy), idleMs: ms(idle), gcMs: ms(gc), functions, own, areas };
}

export function render(summary: ProfileSummary): string {
  const lines: string[] = [];
  lines.push(`profile ${summary.durationMs} ms, busy ${summary.busyMs} ms (idle ${summary.idleMs} ms), GC ${summary.gcMs} ms`);
  lines.push('', 'self time by area (% of busy)');
  for (const a of summary.areas.slice(0, 20)) lines.push(`  ${a.selfPct.toFixed(1).padStart(5)}%  ${a.selfMs.toFixed(0).padStart(8)} ms  ${a.area}`);
  lines.push('', 'top functions by self time (% of busy; total = with callees)');
  for (const f of summary.functions) {
    lines.push(`  ${f.selfPct.toFixed(1).padStart(5)}%  total ${f.totalPct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
  }
  if (summary.own.length > 0) {
    lines.push('', 'our code (src/) by total time (self + callees)');
    for (const f of summary.own) lines.push(`  ${f.totalPct.toFixed(1).padStart(5)}%  self ${f.selfPct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
  }
  return lines.join('\n');
}

export function loadProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const file = args.find((a, i) => !a.startsWith('--') && !['--top', '--window'].includes(args[i - 1]));
  if (file === undefined) {
    process.stderr.write('usage: node --import tsx bench/cpuprofile-summary.ts FILE.cpuprofile [--top N] [--json]\n');
    process.exit(2);
  }
  const topAt = args.indexOf('--top');
  const top = topAt === -1 ? 25 : Number(args[topAt + 1]);
  const windowAt = args.indexOf('--window');
  const window = windowAt === -1 ? undefined : (args[windowAt + 1].split(',').map(Number) as [number, number]);
  const profile = loadProfile(file);
  const summary = summarise(profile, top, window);
  process.stdout.write(args.includes('--json') ? `${JSON.stringify(summary)}\n` : `${render(summary)}\n`);
}
