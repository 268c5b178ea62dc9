/**
 * Group commit for hot writes (archive, offline messages): many stanzas, one transaction,
 * and each stanza acknowledged only once its write is durable.
 *
 *   const archiveWrites = new WriteQueue<ArchivedMessage>({
 *     write: (batch) => storage.archive.append([...batch]),
 *     log: ctx.log,
 *     name: 'mam',
 *   });
 *   await archiveWrites.enqueue(message); // resolves after COMMIT; rejects with WriteGaveUp
 *
 * - Batching without a timer: on an idle system an item is written at once (after the
 *   current turn of the event loop, so items queued together share a transaction); while a
 *   batch commits, the next one accumulates, up to `maxBatch` items. One batch is in flight
 *   at a time, so batches commit in the order their items were enqueued.
 * - Retries: a batch whose write fails is retried, whole, with exponential back-off and
 *   jitter, until the give-up deadline measured from its oldest item's enqueue time. Only
 *   then is every item of the batch rejected (so a sender waits at most about
 *   `giveUpAfterMs` for an answer, and during a long outage the queue fails fast). Writes
 *   must therefore be idempotent or transactional: a retried batch may have committed
 *   already if the connection died while COMMIT was in flight (the archive skips ids it
 *   already has).
 * - Poison items: an error `isPermanent` says no retry can fix (a constraint or data error)
 *   splits the batch in halves, written one after the other, down to the single item that
 *   fails; only that item is rejected.
 * - Memory: beyond `maxPending` waiting items, `enqueue` rejects at once with WriteQueueFull.
 */
import type { Logger } from 'pino';

export interface WriteQueueOptions<T, R> {
  /**
   * Writes one batch in one transaction and resolves once it is committed. May return one
   * result per item (in order), which that item's `enqueue` resolves with.
   */
  write(batch: readonly T[]): Promise<readonly R[] | void>;
  /** Most items per batch. Default 256. */
  maxBatch?: number;
  /** Most items waiting (not counting the batch in flight) before enqueue refuses. Default 100,000. */
  maxPending?: number;
  /** First retry delay. Default 50 ms. */
  initialDelayMs?: number;
  /** Ceiling of the doubling retry delay. Default 2 s. */
  maxDelayMs?: number;
  /**
   * How long an item may wait for others before a batch is written, when nothing is being
   * written. Default 0: at once. For writes nobody waits on (last activity) a linger turns
   * a burst into one transaction instead of one per item, with a synchronous driver too.
   */
  lingerMs?: number;
  /** A batch is rejected once this long has passed since its oldest item was enqueued and a write failed again. Default 30 s. */
  giveUpAfterMs?: number;
  /** Randomise each delay within [delay/2, delay], so writers recovering together spread out. Default true. */
  jitter?: boolean;
  /** Errors not worth retrying. Default: `isPermanentStorageError`. */
  isPermanent?(error: unknown): boolean;
  log?: Pick<Logger, 'warn' | 'error'>;
  /** Names the queue in log lines. */
  name?: string;
}

/** Every attempt to write the item's batch failed until the deadline; `cause` is the last error. */
export class WriteGaveUp extends Error {
  constructor(readonly attempts: number, cause: unknown) {
    super(`write failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${describe(cause)}`, { cause });
    this.name = 'WriteGaveUp';
  }
}

/** The queue already holds `maxPending` items (the database has been failing or is too slow). */
export class WriteQueueFull extends Error {
  constructor(readonly limit: number) {
    super(`write queue full (${limit} items waiting)`);
    this.name = 'WriteQueueFull';
  }
}

/** The queue was closed before the item was enqueued. */
export class WriteQueueClosed extends Error {
  constructor() {
    super('write queue closed');
    this.name = 'WriteQueueClosed';
  }
}

interface Entry<T, R> {
  item: T;
  enqueuedAt: number;
  resolve(result: R): void;
  reject(error: unknown): void;
}

export class WriteQueue<T, R = void> {
  private readonly options: WriteQueueOptions<T, R>;
  private readonly maxBatch: number;
  private readonly maxPending: number;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly giveUpAfterMs: number;
  private readonly isPermanent: (error: unknown) => boolean;
  private pending: Entry<T, R>[] = [];
  private inFlight = 0;
  private running = false;
  private closed = false;
  private linger: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(options: WriteQueueOptions<T, R>) {
    this.options = options;
    this.maxBatch = positive(options.maxBatch ?? 256, 'maxBatch');
    this.maxPending = positive(options.maxPending ?? 100_000, 'maxPending');
    this.initialDelayMs = positive(options.initialDelayMs ?? 50, 'initialDelayMs');
    this.maxDelayMs = Math.max(this.initialDelayMs, options.maxDelayMs ?? 2_000);
    this.giveUpAfterMs = Math.max(0, options.giveUpAfterMs ?? 30_000);
    this.isPermanent = options.isPermanent ?? isPermanentStorageError;
  }

  /** Items enqueued and not yet settled (waiting or being written). */
  get size(): number {
    return this.pending.length + this.inFlight;
  }

  /** Resolves with the item's result once the batch holding it has committed. */
  enqueue(item: T): Promise<R> {
    if (this.closed) return Promise.reject(new WriteQueueClosed());
    if (this.pending.length >= this.maxPending) return Promise.reject(new WriteQueueFull(this.maxPending));
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, enqueuedAt: Date.now(), resolve, reject });
      if (!this.running) {
        this.running = true;
        const lingerMs = this.options.lingerMs ?? 0;
        // Without a linger, just past the current turn, so items enqueued together share a batch.
        if (lingerMs > 0) this.linger = setTimeout(() => this.startDrain(), lingerMs);
        else setImmediate(() => void this.drain());
      }
    });
  }

  /** Resolves when every item enqueued so far has settled (committed or given up). */
  flush(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new items, then waits for the queued ones to settle. */
  close(): Promise<void> {
    this.closed = true;
    if (this.linger !== undefined) this.startDrain();
    return this.flush();
  }

  private startDrain(): void {
    clearTimeout(this.linger);
    this.linger = undefined;
    void this.drain();
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.inFlight = batch.length;
      await this.commit(batch);
      this.inFlight = 0;
    }
    this.running = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Writes the batch until it commits, turns out to hold a poison item, or its deadline passes. Never throws. */
  private async commit(batch: Entry<T, R>[]): Promise<void> {
    const deadline = batch[0].enqueuedAt + this.giveUpAfterMs;
    let delay = this.initialDelayMs;
    for (let attempt = 1; ; attempt++) {
      let results: readonly R[] | void;
      try {
        results = await this.options.write(batch.map((entry) => entry.item));
      } catch (error) {
        if (this.permanent(error)) {
          if (batch.length === 1) {
            this.options.log?.error({ err: error, queue: this.options.name }, 'write refused by the database; item rejected');
            batch[0].reject(error);
            return;
          }
          // Find the culprit: halves in order, so the others still commit in order.
          const half = Math.ceil(batch.length / 2);
          await this.commit(batch.slice(0, half));
          await this.commit(batch.slice(half));
          return;
        }
        const now = Date.now();
        if (now >= deadline) {
          this.options.log?.error({ err: error, queue: this.options.name, attempts: attempt, items: batch.length }, 'write failed; giving up');
          const failure = new WriteGaveUp(attempt, error);
          for (const entry of batch) entry.reject(failure);
          return;
        }
        const wait = Math.min(this.options.jitter === false ? delay : delay / 2 + Math.random() * (delay / 2), deadline - now);
        this.options.log?.warn({ err: error, queue: this.options.name, attempt, items: batch.length, retryInMs: Math.round(wait) }, 'write failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, wait));
        delay = Math.min(delay * 2, this.maxDelayMs);
        continue;
      }
      batch.forEach((entry, index) => entry.resolve(results ? results[index] : (undefined as R)));
      return;
    }
  }

  private permanent(error: unknown): boolean {
    try {
      return this.isPermanent(error);
    } catch {
      return false;
    }
  }
}

/**
 * Errors that retrying the same write cannot fix: constraint and data errors from either
 * database, and programming errors. Anything else (lost connections, server restarts,
 * deadlocks, serialisation failures, SQLITE_BUSY, full disks) is worth retrying.
 */
export function isPermanentStorageError(error: unknown): boolean {
  if (error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError) return true;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code !== 'string') return false;
  // SQLite (better-sqlite3): the extended result code names the primary one.
  if (code.startsWith('SQLITE_')) return /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/.test(code);
  // PostgreSQL SQLSTATE: 22 data exception, 23 integrity constraint, 42 syntax or access rule,
  // 0A feature not supported.
  return /^(22|23|42|0A)[0-9A-Z]{3}$/.test(code);
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 1) throw new RangeError(`WriteQueue ${name} must be at least 1`);
  return value;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
