/**
 * A keyed rate limiter for throttling failed authentications, registrations and the like.
 *
 * Each key has a token bucket holding `limit` tokens that refills continuously, at `limit`
 * tokens per `windowMs`: a burst of `limit` hits is allowed, then one more every
 * `windowMs / limit`, and a key left alone for `windowMs` is back to its full allowance.
 * There are no timers: buckets are refilled when touched, and full ones are forgotten. At
 * most `maxKeys` keys are kept; past that the least recently hit key is evicted (an
 * attacker with many keys can thus flush old entries, but memory stays bounded). Time comes
 * from a monotonic clock (performance.now) so wall-clock jumps change nothing.
 */

export interface RateLimiterOptions {
  /** Hits allowed in a burst (and per window). */
  limit: number;
  /** Time for an exhausted key to regain its full allowance. */
  windowMs: number;
  /** Most keys remembered at once. */
  maxKeys: number;
  /** Monotonic milliseconds; performance.now by default (injectable for tests). */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  /** Insertion order is recency order: a hit moves its key to the end. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: RateLimiterOptions) {
    const { limit, windowMs, maxKeys } = options;
    if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError('limit must be a positive integer');
    if (!(windowMs > 0)) throw new RangeError('windowMs must be positive');
    if (!(Number.isInteger(maxKeys) && maxKeys >= 1)) throw new RangeError('maxKeys must be a positive integer');
    this.limit = limit;
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
    this.now = options.now ?? (() => performance.now());
  }

  /** Tokens of a bucket now; deletes buckets that are full again. */
  private refill(key: string, bucket: Bucket, now: number): number {
    const elapsed = Math.max(0, now - bucket.at);
    const tokens = Math.min(this.limit, bucket.tokens + (elapsed * this.limit) / this.windowMs);
    bucket.tokens = tokens;
    bucket.at = now;
    if (tokens >= this.limit) this.buckets.delete(key);
    return tokens;
  }

  /** Count one hit for `key`; false when the key is over its limit (the hit is then not counted). */
  hit(key: string): boolean {
    const now = this.now();
    const existing = this.buckets.get(key);
    const tokens = existing ? this.refill(key, existing, now) : this.limit;
    if (tokens < 1) return false;
    this.buckets.delete(key);
    if (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    return true;
  }

  /** True when `key` has used its allowance: the next hit would be refused. Counts nothing. */
  blocked(key: string): boolean {
    const bucket = this.buckets.get(key);
    return bucket !== undefined && this.refill(key, bucket, this.now()) < 1;
  }

  /** Forget a key (for example after a successful login). */
  reset(key: string): void {
    this.buckets.delete(key);
  }

  /** Keys currently remembered. */
  get size(): number {
    return this.buckets.size;
  }
}
