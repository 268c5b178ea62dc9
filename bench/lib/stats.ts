/**
 * Latency recording: a log-linear histogram over microseconds (64 sub-buckets per power of
 * two, under 1 % error) so millions of samples cost a fixed few kilobytes, with the exact
 * minimum, maximum and mean kept aside.
 */

const SUB = 64;
const LINEAR = 2 * SUB; // values below this are exact

function bucketOf(us: number): number {
  const v = us < 0 ? 0 : Math.min(Math.floor(us), 0x7fffffff);
  if (v < LINEAR) return v;
  const shift = 31 - Math.clz32(v) - 6; // v >> shift lands in [64, 128)
  return LINEAR + (shift - 1) * SUB + ((v >> shift) - SUB);
}

function valueOf(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const shift = ((bucket - LINEAR) >> 6) + 1;
  const mantissa = ((bucket - LINEAR) & (SUB - 1)) + SUB;
  return mantissa * 2 ** shift + 2 ** (shift - 1); // middle of the bucket
}

export interface LatencySummary {
  count: number;
  /** Milliseconds. */
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export class Histogram {
  private counts = new Float64Array(LINEAR + 40 * SUB);
  count = 0;
  private sum = 0;
  private min = Infinity;
  private max = 0;

  /** Records one duration in milliseconds. */
  record(ms: number): void {
    const us = ms * 1000;
    let b = bucketOf(us);
    if (b >= this.counts.length) b = this.counts.length - 1;
    this.counts[b]++;
    this.count++;
    this.sum += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  /** The value at quantile q (0..1), in milliseconds. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, valueOf(i) / 1000));
    }
    return this.max;
  }

  summary(): LatencySummary {
    if (this.count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    return {
      count: this.count,
      min: round(this.min),
      mean: round(this.sum / this.count),
      p50: round(this.quantile(0.5)),
      p90: round(this.quantile(0.9)),
      p99: round(this.quantile(0.99)),
      max: round(this.max),
    };
  }
}

/** Rounds to 3 significant decimals for reports. */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
