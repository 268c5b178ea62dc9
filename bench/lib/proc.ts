/**
 * Process plumbing for the benchmark: CPU pinning with taskset, memory and CPU time of a
 * server process from /proc, finding the real server process under wrapper scripts, and
 * waiting for ports.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';

let tasksetChecked: boolean | undefined;

/** taskset exists and the machine has at least two cores to split. */
export function canPin(): boolean {
  if (tasksetChecked === undefined) {
    try {
      execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
      tasksetChecked = os.availableParallelism() >= 2;
    } catch {
      tasksetChecked = false;
    }
  }
  return tasksetChecked;
}

/** Spawns `command args` pinned to `core` when pinning is possible (and `core` is defined). */
export function spawnPinned(core: number | undefined, command: string, args: string[], options: SpawnOptions): ChildProcess {
  if (core !== undefined && canPin()) return spawn('taskset', ['-c', String(core), command, ...args], options);
  return spawn(command, args, options);
}

/** A /proc/<pid>/status field in kB (VmRSS, VmHWM, ...), or undefined when unreadable. */
export function statusKb(pid: number, field: string): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

export function rssKb(pid: number): number | undefined {
  return statusKb(pid, 'VmRSS');
}

const TICKS = 100; // USER_HZ on Linux

/** User + system CPU seconds consumed so far by `pid` (its threads included). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime = field 14, stime = field 15
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * The process among `root` and its descendants whose command name matches `name` (the
 * real server under taskset, su and shell wrappers), or undefined.
 */
export function findDescendant(root: number, name: RegExp): number | undefined {
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (name.test(commOf(pid))) return pid;
    queue.push(...childrenOf(pid));
  }
  return undefined;
}

export function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

export async function waitForPort(host: string, port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await accepts(host, port))) {
    if (!alive()) throw new Error(`process exited before port ${port} opened`);
    if (Date.now() > deadline) throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Ports that were free a moment ago (held at once, so distinct). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when the child exits (immediately if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function terminate(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
}

export function machineInfo(pin: boolean): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    node: process.version,
    cores: os.availableParallelism(),
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    pinned: !pin ? 'no (--no-pin)' : canPin() ? 'server core 0, generator core 1' : 'no (taskset missing or one core)',
    loadavg1: Math.round(os.loadavg()[0] * 100) / 100,
  };
}

/** CPU seconds all cores spent busy since boot (/proc/stat), or undefined. */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return (user + nice + system + irq + softirq + steal) / TICKS;
  } catch {
    return undefined;
  }
}

export interface CpuFigures {
  /** The server process, % of one core (null when its pid is unknown). */
  serverCpuPct: number | null;
  /** The generator process, % of one core. */
  generatorCpuPct: number;
  /** Every other process on the machine, % of one core (other work competing for the cores). */
  otherCpuPct: number | null;
  /** CPU seconds the server used (null when its pid is unknown): divided by the work done, a cost less sensitive to other load than a rate. */
  serverCpuS: number | null;
}

/**
 * CPU use over an interval, as % of one core: the server's (from /proc, when its pid is
 * known), this process's, and everything else's. A generator near 100 % means the figures
 * are generator-bound; a high `other` means they were taken on a busy machine.
 */
export class CpuMeter {
  private readonly pid: number | undefined;
  private readonly wallStart = performance.now();
  private readonly serverStart: number | undefined;
  private readonly machineStart = machineBusySeconds();
  private readonly selfStart = process.cpuUsage();

  constructor(pid: number | undefined) {
    this.pid = pid;
    this.serverStart = pid === undefined ? undefined : cpuSeconds(pid);
  }

  read(): CpuFigures {
    const wall = (performance.now() - this.wallStart) / 1000;
    const usage = process.cpuUsage(this.selfStart);
    const self = (usage.user + usage.system) / 1e6;
    const serverNow = this.pid === undefined ? undefined : cpuSeconds(this.pid);
    const server = this.serverStart === undefined || serverNow === undefined ? undefined : serverNow - this.serverStart;
    const machineNow = machineBusySeconds();
    const machine = this.machineStart === undefined || machineNow === undefined ? undefined : machineNow - this.machineStart;
    const pct = (seconds: number) => Math.round((seconds / wall) * 1000) / 10;
    return {
      serverCpuPct: server === undefined ? null : pct(server),
      generatorCpuPct: pct(self),
      otherCpuPct: machine === undefined ? null : Math.max(0, pct(machine - self - (server ?? 0))),
      serverCpuS: server === undefined ? null : Math.round(server * 1000) / 1000,
    };
  }
}
