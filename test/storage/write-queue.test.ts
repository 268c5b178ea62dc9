/**
 * The batching write queue: unit tests with a scripted writer, then the archive and offline
 * stores written through it on every backend while the writes fail now and then (and, on
 * PostgreSQL, while the pool's connections are killed under it): nothing is lost or doubled.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import {
  WriteGaveUp, WriteQueue, WriteQueueClosed, WriteQueueFull, isPermanentStorageError, type WriteQueueOptions,
} from '../../src/storage/write-queue.ts';
import type { ArchivedMessage, UserRef } from '../../src/storage/types.ts';
import { postgresQuery, storageBackends, type OpenedBackend } from '../support/storage-backends.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

class TransientError extends Error {
  code = 'ECONNRESET';
}

/** A queue over a writer that records its batches. */
function recording<T>(options: Partial<WriteQueueOptions<T, void>> = {}, write?: (batch: readonly T[]) => Promise<void>) {
  const batches: T[][] = [];
  let active = 0;
  let maxActive = 0;
  const queue = new WriteQueue<T>({
    initialDelayMs: 5,
    maxDelayMs: 20,
    giveUpAfterMs: 1000,
    jitter: false,
    ...options,
    async write(batch) {
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        await write?.(batch);
        batches.push([...batch]);
      } finally {
        active--;
      }
    },
  });
  return { queue, batches, maxActive: () => maxActive };
}

describe('write queue', () => {
  test('an item on an idle queue is written at once, alone', { timeout: 10_000 }, async (t) => {
    // No timer is involved: with timers frozen the write still happens.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { queue, batches } = recording<number>();
    await queue.enqueue(1);
    assert.deepEqual(batches, [[1]]);
  });

  test('with a linger, items enqueued apart share one batch; close writes at once', async () => {
    const { queue, batches } = recording<number>({ lingerMs: 10_000 });
    const first = queue.enqueue(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = queue.enqueue(2);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(batches, [], 'nothing written while lingering');
    await queue.close();
    await Promise.all([first, second]);
    assert.deepEqual(batches, [[1, 2]]);
  });

  test('items enqueued together share a batch of at most maxBatch, in order', async () => {
    const { queue, batches } = recording<number>({ maxBatch: 4 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => queue.enqueue(i)));
    assert.deepEqual(batches, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  });

  test('while a batch commits the next accumulates; enqueue resolves only after its commit', async () => {
    const gate = deferred();
    const started = deferred();
    let calls = 0;
    const { queue, batches, maxActive } = recording<number>({}, async () => {
      if (calls++ === 0) {
        started.resolve();
        await gate.promise;
      }
    });
    const settled: number[] = [];
    const first = queue.enqueue(0).then(() => settled.push(0));
    await started.promise;
    const rest = [1, 2, 3, 4, 5].map((i) => queue.enqueue(i).then(() => settled.push(i)));
    await sleep(20);
    assert.deepEqual(settled, [], 'nothing acknowledged before its commit');
    assert.equal(queue.size, 6);
    gate.resolve();
    await Promise.all([first, ...rest]);
    assert.deepEqual(batches, [[0], [1, 2, 3, 4, 5]]);
    assert.deepEqual(settled, [0, 1, 2, 3, 4, 5]);
    assert.equal(maxActive(), 1, 'one batch in flight at a time');
    assert.equal(queue.size, 0);
  });

  test('a writer\'s per-item results are handed to each item', async () => {
    const queue = new WriteQueue<number, string>({ write: async (batch) => batch.map((n) => `#${n}`) });
    assert.deepEqual(await Promise.all([queue.enqueue(1), queue.enqueue(2)]), ['#1', '#2']);
  });

  test('a failing write is retried with growing delays until it succeeds; order is kept', async () => {
    const attempts: number[] = [];
    const started = deferred();
    let failures = 3;
    const { queue, batches } = recording<number>({ initialDelayMs: 10, maxDelayMs: 40 }, async () => {
      attempts.push(performance.now());
      started.resolve();
      if (failures-- > 0) throw new TransientError('connection reset');
    });
    const first = [1, 2].map((i) => queue.enqueue(i));
    await started.promise;
    const later = [3, 4].map((i) => queue.enqueue(i));
    await Promise.all([...first, ...later]);
    assert.deepEqual(batches, [[1, 2], [3, 4]], 'the retried batch commits before the later one');
    const gaps = attempts.slice(1, 4).map((t, i) => t - attempts[i]);
    assert.ok(gaps[0] >= 9 && gaps[1] >= 19 && gaps[2] >= 39, `delays double: ${gaps.map(Math.round).join(', ')}`);
  });

  test('the delay stops doubling at maxDelayMs', async (t) => {
    // Timers are driven by hand, so each retry is seen to wait exactly its delay.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let attempts = 0;
    const { queue } = recording<number>({ initialDelayMs: 5, maxDelayMs: 10 }, async () => {
      if (++attempts <= 6) throw new TransientError('down');
    });
    const written = queue.enqueue(1);
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    await turn();
    assert.equal(attempts, 1);
    for (const [retry, delay] of [5, 10, 10, 10, 10, 10].entries()) {
      t.mock.timers.tick(delay - 1);
      await turn();
      assert.equal(attempts, retry + 1, `retry ${retry + 1} waits its ${delay} ms`);
      t.mock.timers.tick(1);
      await turn();
      assert.equal(attempts, retry + 2, `retry ${retry + 1} after ${delay} ms`);
    }
    await written;
  });

  test('when the deadline passes every item of the batch is rejected; the queue then carries on', async () => {
    let down = true;
    const error = new TransientError('database unreachable');
    const { queue, batches } = recording<number>({ giveUpAfterMs: 100 }, async () => {
      if (down) throw error;
    });
    const started = performance.now();
    const results = await Promise.allSettled([queue.enqueue(1), queue.enqueue(2)]);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 95, `gave up after ${Math.round(elapsed)} ms, not before the deadline`);
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      const reason = (result as PromiseRejectedResult).reason as WriteGaveUp;
      assert.ok(reason instanceof WriteGaveUp);
      assert.equal(reason.cause, error);
      assert.ok(reason.attempts > 3);
    }
    down = false;
    await queue.enqueue(3);
    assert.deepEqual(batches, [[3]]);
  });

  test('items that waited out an outage behind a failing batch get one last try, not another full deadline', async () => {
    const attempts = new Map<number, number>();
    const { queue } = recording<number>({ giveUpAfterMs: 80, maxBatch: 1 }, async ([item]) => {
      attempts.set(item, (attempts.get(item) ?? 0) + 1);
      throw new TransientError('down');
    });
    const results = await Promise.allSettled([1, 2, 3].map((i) => queue.enqueue(i)));
    assert.ok(results.every((r) => r.status === 'rejected'));
    assert.ok(attempts.get(1)! > 1, 'the first retried until the deadline');
    assert.equal(attempts.get(2), 1, 'the second had one last try');
    assert.equal(attempts.get(3), 1, 'the third had one last try');
  });

  test('a permanent error isolates the one bad item; the others commit, in order', async () => {
    const constraint = Object.assign(new Error('violates check constraint'), { code: '23514' });
    const { queue, batches } = recording<number>({}, async (batch) => {
      if (batch.includes(13)) throw constraint;
    });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => queue.enqueue(i)));
    assert.deepEqual(results.map((r) => r.status === 'fulfilled'), Array.from({ length: 20 }, (_, i) => i !== 13));
    assert.equal((results[13] as PromiseRejectedResult).reason, constraint);
    assert.deepEqual(batches.flat(), Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 13));
  });

  test('beyond maxPending waiting items, enqueue refuses at once', async () => {
    const gate = deferred();
    const started = deferred();
    const { queue } = recording<number>({ maxPending: 3 }, () => {
      started.resolve();
      return gate.promise;
    });
    const accepted = [queue.enqueue(0)];
    await started.promise; // 0 is in flight; 3 more may wait
    accepted.push(queue.enqueue(1), queue.enqueue(2), queue.enqueue(3));
    await assert.rejects(queue.enqueue(4), WriteQueueFull);
    gate.resolve();
    await Promise.all(accepted);
  });

  test('close refuses new items and waits for the queued ones', async () => {
    const gate = deferred();
    const { queue, batches } = recording<number>({}, () => gate.promise);
    const queued = [queue.enqueue(1), queue.enqueue(2)];
    let closed = false;
    const closing = queue.close().then(() => (closed = true));
    await assert.rejects(queue.enqueue(3), WriteQueueClosed);
    await sleep(10);
    assert.equal(closed, false);
    gate.resolve();
    await closing;
    await Promise.all(queued);
    assert.deepEqual(batches, [[1, 2]]);
    await queue.flush();
  });

  test('storage errors: constraint and data errors are permanent, connection trouble is not', () => {
    const coded = (code: string) => Object.assign(new Error(code), { code });
    for (const code of ['23505', '23514', '22001', '42P01', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_MISMATCH', 'SQLITE_TOOBIG']) {
      assert.equal(isPermanentStorageError(coded(code)), true, code);
    }
    for (const code of ['57P01', '08006', '40001', '40P01', '53300', 'SQLITE_BUSY', 'SQLITE_IOERR_FSYNC', 'SQLITE_FULL', 'ECONNREFUSED']) {
      assert.equal(isPermanentStorageError(coded(code)), false, code);
    }
    assert.equal(isPermanentStorageError(new Error('Connection terminated unexpectedly')), false);
    assert.equal(isPermanentStorageError(new TypeError('x is undefined')), true);
    assert.equal(isPermanentStorageError('weird'), false);
  });
});

const alice: UserRef = { username: 'alice', domain: 'example.com' };

function archived(n: number): ArchivedMessage {
  return {
    id: `id${String(n).padStart(8, '0')}`,
    owner: n % 3 ? alice : { username: `user${n % 7}`, domain: 'example.com' },
    with: 'bob@example.com',
    withResource: 'phone',
    direction: 'in',
    timestamp: 1_700_000_000_000 + n,
    stanza: `<message id="m${n}"><body>hello ${n}</body></message>`,
    body: `hello n${n}`,
  };
}

/** Sends `count` items in bursts of 1 to 50, a turn of the event loop apart, as traffic does. */
async function traffic<R>(count: number, send: (n: number) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const all: Promise<R>[] = [];
  for (let n = 0; n < count;) {
    const burst = 1 + Math.floor(Math.random() * 50);
    for (let i = 0; i < burst && n < count; i++) all.push(send(n++));
    await sleep(Math.random() < 0.2 ? 2 : 0);
  }
  return Promise.allSettled(all);
}

async function archivedCount(opened: OpenedBackend): Promise<{ total: number; distinct: number }> {
  const { rows } = await sql<{ total: number; distinct: number }>`
    select count(*) as total, count(distinct domain || ' ' || username || ' ' || id) as ${sql.id('distinct')} from archive_messages`
    .execute(opened.storage.db);
  return { total: Number(rows[0].total), distinct: Number(rows[0].distinct) };
}

for (const backend of storageBackends) {
  describe(`write queue on a real database (${backend.name})`, () => {
    let opened: OpenedBackend;
    beforeEach(async () => { opened = await backend.open(); });
    afterEach(() => opened.drop());

    test('archive writes are batched, and failures before or after the commit lose and double nothing', async (t) => {
      const { archive } = opened.storage;
      let writes = 0;
      const queue = new WriteQueue<ArchivedMessage>({
        initialDelayMs: 2,
        maxDelayMs: 20,
        maxBatch: 100,
        async write(batch) {
          const n = ++writes;
          // Every 5th write fails before reaching the database; every 7th after committing,
          // as when the connection dies while COMMIT's answer is on its way.
          if (n % 5 === 0) throw new TransientError('injected failure before the write');
          await archive.append([...batch]);
          if (n % 7 === 0) throw new TransientError('injected failure after the commit');
        },
      });
      const results = await traffic(3000, (n) => queue.enqueue(archived(n)));
      assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);
      assert.deepEqual(await archivedCount(opened), { total: 3000, distinct: 3000 });
      assert.ok(writes < 1500, `batched: ${writes} writes for 3000 messages`);
      t.diagnostic(`${writes} writes for 3000 messages`);
      const found = await archive.query({ owner: alice, text: 'n2999', max: 10, fromEnd: false });
      assert.equal(found.count, 1, 'search rows written once');
      await queue.close();
    });

    test('offline writes through the queue keep order and report the quota per item', async () => {
      const { offline } = opened.storage;
      let writes = 0;
      const queue = new WriteQueue<{ owner: UserRef; receivedAt: number; stanza: string }, boolean>({
        initialDelayMs: 2,
        async write(batch) {
          if (++writes % 3 === 0) throw new TransientError('injected');
          const refused = new Set(await offline.pushMany(batch, 400));
          return batch.map((_, i) => !refused.has(i));
        },
      });
      const results = await traffic(500, (n) => queue.enqueue({ owner: alice, receivedAt: n, stanza: `<message id="${n}"/>` }));
      const stored = results.map((r) => (r.status === 'fulfilled' ? r.value : 'error'));
      assert.deepEqual(stored, Array.from({ length: 500 }, (_, n) => n < 400));
      assert.deepEqual((await offline.peek(alice)).map((m) => m.receivedAt), Array.from({ length: 400 }, (_, n) => n));
    });

    if (backend.name === 'postgres') {
      test('PostgreSQL connections killed under the writer: every message is stored once', async (t) => {
        const { storage } = opened;
        let failures = 0;
        const queue = new WriteQueue<ArchivedMessage>({
          initialDelayMs: 5,
          maxDelayMs: 100,
          write: async (batch) => {
            try {
              await storage.archive.append([...batch]);
            } catch (error) {
              failures++;
              throw error;
            }
          },
        });
        let killing = true;
        const killer = (async () => {
          let kills = 0;
          while (killing) {
            await sleep(20 + Math.random() * 40);
            const pids = await poolBackends(opened);
            await postgresQuery('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [pids]);
            kills++;
          }
          return kills;
        })();
        const results = await traffic(4000, (n) => queue.enqueue(archived(n)));
        killing = false;
        const kills = await killer;
        assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);
        assert.ok(kills >= 3, `killed the pool's connections ${kills} times`);
        assert.ok(failures > 0, 'some writes failed and were retried');
        // The last round of kills may have hit idle connections whose close the pool has not
        // seen yet; the count is read on a connection that is known alive.
        assert.deepEqual(await afterKills(() => archivedCount(opened)), { total: 4000, distinct: 4000 });
        t.diagnostic(`${kills} rounds of kills, ${failures} failed writes retried`);
        await queue.close();
      });
    }
  });
}

/** Runs a read again while it fails because its pooled connection was terminated by a kill. */
async function afterKills<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      const terminated = (error as { code?: string }).code === '57P01';
      if (!terminated || attempt === 5) throw error;
    }
  }
}

/**
 * The backend pids of every connection of the storage's pool (size 4): four transactions
 * hold four connections at once and each reports its pid. Only these are killed, never
 * another test's or another process's connections to the same database.
 */
async function poolBackends(opened: OpenedBackend): Promise<number[]> {
  const size = opened.options.backend === 'postgres' ? opened.options.poolSize : 1;
  const pids: number[] = [];
  const all = deferred();
  await Promise.allSettled(Array.from({ length: size }, () => opened.storage.db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
    pids.push(rows[0].pid);
    if (pids.length === size) all.resolve();
    await Promise.race([all.promise, sleep(500)]);
  })));
  return pids;
}
