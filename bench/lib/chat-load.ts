/**
 * The one-to-one chat load shared by the chat scenario (through an XMPP server) and the
 * relay scenario (through a byte relay). Each pair keeps exactly W messages in flight: W
 * messages start (alternately from each side), and every message received makes the
 * receiver send a new one back to its partner. Every body carries the pair, the direction,
 * a per-direction sequence number and the send time in microseconds, so the receiver can
 * measure latency and count losses and duplicates. Latency is measured within this one
 * process (same clock) and includes the generator's own queueing.
 */
import { CpuMeter, sleep } from './proc.ts';
import { Histogram, round, type LatencySummary } from './stats.ts';

export interface ChatPeer {
  /** The address messages to this peer are sent to (its full JID). */
  readonly address: string;
  send(data: string): void;
  /** Installs the handler for every incoming top-level element. */
  listen(handler: (raw: string, name: string) => void): void;
}

export interface ChatPair {
  a: ChatPeer;
  b: ChatPeer;
}

export interface ChatLoadOptions {
  window: number;
  durationS: number;
  warmupS: number;
  bodyBytes: number;
  drainS: number;
  serverPid?: number;
  log(message: string): void;
}

export interface ChatLoadFigures {
  pairs: number;
  window: number;
  durationS: number;
  /** Messages received within the measured window, per second. */
  msgsPerSec: number;
  latencyMs: LatencySummary;
  sent: number;
  received: number;
  lost: number;
  duplicated: number;
  /** Error stanzas and anything unparseable that came back. */
  errors: number;
  serverCpuPct: number | null;
  generatorCpuPct: number;
  otherCpuPct: number | null;
  serverCpuS: number | null;
  /** Server CPU microseconds per message delivered in the window. */
  serverCpuUsPerMsg: number | null;
  /** The measured window in CLOCK_MONOTONIC µs (to cut a server CPU profile to it). */
  windowMonotonicUs: [number, number];
}

/** Received sequence numbers of one direction, as a growable bitset. */
class SeqSet {
  private bits = new Uint32Array(64);
  /** Returns false when `seq` was already there. */
  add(seq: number): boolean {
    const word = seq >>> 5;
    if (word >= this.bits.length) {
      const grown = new Uint32Array(Math.max(word + 1, this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    const mask = 1 << (seq & 31);
    if (this.bits[word] & mask) return false;
    this.bits[word] |= mask;
    return true;
  }
}

interface Direction {
  from: ChatPeer;
  to: ChatPeer;
  pair: number;
  dir: number;
  nextSeq: number;
  received: SeqSet;
}

export async function runChatLoad(pairs: ChatPair[], options: ChatLoadOptions): Promise<ChatLoadFigures> {
  const padding = 'x'.repeat(options.bodyBytes);
  const histogram = new Histogram();
  let running = true;
  let measuring = false;
  let sent = 0;
  let uniqueReceived = 0;
  let windowReceived = 0;
  let duplicated = 0;
  let errors = 0;

  // directions[2 * pair + dir]: dir 0 is a → b, dir 1 is b → a.
  const directions: Direction[] = [];
  pairs.forEach(({ a, b }, pair) => {
    directions.push({ from: a, to: b, pair, dir: 0, nextSeq: 0, received: new SeqSet() });
    directions.push({ from: b, to: a, pair, dir: 1, nextSeq: 0, received: new SeqSet() });
  });

  const sendOn = (d: Direction): void => {
    const seq = d.nextSeq++;
    const now = Math.round(performance.now() * 1000);
    d.from.send(`<message to='${d.to.address}' type='chat' id='${d.pair}-${d.dir}-${seq}'><body>${d.pair}:${d.dir}:${seq}:${now}:${padding}</body></message>`);
    sent++;
  };

  const onElement = (raw: string, name: string): void => {
    if (name !== 'message') return; // presence echoes and the like
    const open = raw.indexOf('<body>');
    if (open === -1 || raw.includes("type='error'") || raw.includes('type="error"')) {
      errors++;
      return;
    }
    // "pair:dir:seq:time:padding"
    let p = open + 6;
    let c1 = raw.indexOf(':', p);
    const pair = +raw.slice(p, c1);
    p = c1 + 1;
    c1 = raw.indexOf(':', p);
    const dir = +raw.slice(p, c1);
    p = c1 + 1;
    c1 = raw.indexOf(':', p);
    const seq = +raw.slice(p, c1);
    p = c1 + 1;
    c1 = raw.indexOf(':', p);
    const sentAt = +raw.slice(p, c1);
    const d = directions[2 * pair + dir];
    if (d === undefined || !(seq >= 0)) {
      errors++;
      return;
    }
    if (!d.received.add(seq)) {
      duplicated++;
      return;
    }
    uniqueReceived++;
    if (measuring) {
      windowReceived++;
      histogram.record(performance.now() - sentAt / 1000);
    }
    // The receiver answers on the reverse direction: W stay in flight.
    if (running) sendOn(directions[2 * pair + (1 - dir)]);
  };

  for (const { a, b } of pairs) {
    a.listen(onElement);
    b.listen(onElement);
  }

  for (let i = 0; i < options.window; i++) {
    for (let pair = 0; pair < pairs.length; pair++) sendOn(directions[2 * pair + (i % 2)]);
  }
  if (options.warmupS > 0) {
    options.log(`warm-up ${options.warmupS}s`);
    await sleep(options.warmupS * 1000);
  }
  options.log(`measuring ${options.durationS}s`);
  const meter = new CpuMeter(options.serverPid);
  const windowStart = performance.now();
  const monotonicStart = Number(process.hrtime.bigint() / 1000n);
  measuring = true;
  await sleep(options.durationS * 1000);
  measuring = false;
  const monotonicEnd = Number(process.hrtime.bigint() / 1000n);
  const windowSeconds = (performance.now() - windowStart) / 1000;
  const cpu = meter.read();
  running = false;

  // Let what is in flight arrive, then count what never did.
  const drainUntil = performance.now() + options.drainS * 1000;
  while (uniqueReceived < sent && performance.now() < drainUntil) await sleep(50);

  return {
    pairs: pairs.length,
    window: options.window,
    durationS: round(windowSeconds, 2),
    msgsPerSec: round(windowReceived / windowSeconds, 1),
    latencyMs: histogram.summary(),
    sent,
    received: uniqueReceived,
    lost: sent - uniqueReceived,
    duplicated,
    errors,
    ...cpu,
    // Messages delivered in the window per server CPU second: the server's cost per message,
    // which other load on the machine disturbs far less than the rate itself.
    serverCpuUsPerMsg: cpu.serverCpuS === null || windowReceived === 0 ? null : round((cpu.serverCpuS * 1e6) / windowReceived, 2),
    windowMonotonicUs: [monotonicStart, monotonicEnd],
  };
}

export function chatRows(f: Record<string, unknown>): [string, string][] {
  const l = f.latencyMs as LatencySummary;
  const n = (x: unknown, d = 1) => (typeof x === 'number' ? (Math.abs(x) >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(d).replace(/\.0+$/, '')) : '-');
  return [
    ['load', `${n(f.pairs)} pairs × ${n(f.window)} in flight, ${n(f.durationS)} s measured`],
    ['delivered msgs/s', n(f.msgsPerSec)],
    ['latency ms', `p50 ${n(l.p50, 2)}  p90 ${n(l.p90, 2)}  p99 ${n(l.p99, 2)}  max ${n(l.max, 2)}`],
    ['sent / received', `${n(f.sent)} / ${n(f.received)}`],
    ['lost / duplicated / errors', `${n(f.lost)} / ${n(f.duplicated)} / ${n(f.errors)}`],
    ['CPU % of a core', `server ${n(f.serverCpuPct)}  generator ${n(f.generatorCpuPct)}  other processes ${n(f.otherCpuPct)}`],
    ['server CPU per message', `${n(f.serverCpuUsPerMsg, 2)} µs`],
  ];
}
