/** The offline message store (XEP-0160), on every backend. */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { openStorage } from '../../src/storage/index.ts';
import type { OfflineStore, UserRef } from '../../src/storage/types.ts';
import { storageBackends, type OpenedBackend } from '../support/storage-backends.ts';

const alice: UserRef = { username: 'alice', domain: 'example.com' };
const bob: UserRef = { username: 'bob', domain: 'example.com' };

const message = (n: number) => ({ receivedAt: 1_700_000_000_000 + n, stanza: `<message id="m${n}"><body>${n}</body></message>` });

for (const backend of storageBackends) {
  describe(`offline store (${backend.name})`, () => {
    let opened: OpenedBackend;
    beforeEach(async () => { opened = await backend.open(); });
    afterEach(() => opened.drop());

    test('keeps each account\'s messages in arrival order until removed', async () => {
      const { offline } = opened.storage;
      for (let n = 1; n <= 5; n++) assert.equal(await offline.push(n % 2 ? alice : bob, message(n), 100), true);
      const queued = await offline.peek(alice);
      assert.deepEqual(queued.map((m) => m.stanza), [1, 3, 5].map((n) => message(n).stanza));
      assert.deepEqual(queued.map((m) => m.receivedAt), [1, 3, 5].map((n) => message(n).receivedAt));
      assert.ok(queued[0].seq < queued[1].seq && queued[1].seq < queued[2].seq);

      await offline.remove(alice, queued[1].seq);
      assert.deepEqual((await offline.peek(alice)).map((m) => m.stanza), [message(5).stanza]);
      assert.equal(await offline.count(bob), 2);
    });

    test('refuses a message beyond the quota, and accepts again once delivered', async () => {
      const { offline } = opened.storage;
      assert.equal(await offline.push(alice, message(1), 2), true);
      assert.equal(await offline.push(alice, message(2), 2), true);
      assert.equal(await offline.push(alice, message(3), 2), false);
      assert.equal(await offline.push(bob, message(4), 2), true, 'the quota is per account');
      assert.equal(await offline.count(alice), 2);
      const [first] = await offline.peek(alice);
      await offline.remove(alice, first.seq);
      assert.equal(await offline.push(alice, message(5), 2), true);
    });

    test('concurrent senders never overshoot the quota', async () => {
      const { offline } = opened.storage;
      const results = await Promise.all(Array.from({ length: 20 }, (_, n) => offline.push(alice, message(n), 7)));
      assert.equal(results.filter(Boolean).length, 7);
      assert.equal(await offline.count(alice), 7);
    });

    test('a batch keeps its order, stores what fits and names the refused messages', async () => {
      const { offline } = opened.storage;
      const carol: UserRef = { username: 'carol', domain: 'example.org' };
      await offline.push(alice, message(0), 3);
      const batch = [alice, bob, alice, carol, alice, bob, alice, carol].map((owner, i) => ({ owner, ...message(i + 1) }));
      // alice already holds 1 of 3: her 2nd and 3rd of the batch fit, the 4th and 5th do not.
      assert.deepEqual(await offline.pushMany(batch, 3), [4, 6]);
      assert.deepEqual((await offline.peek(alice)).map((m) => m.stanza), [0, 1, 3].map((n) => message(n).stanza));
      assert.deepEqual((await offline.peek(bob)).map((m) => m.stanza), [2, 6].map((n) => message(n).stanza));
      assert.deepEqual((await offline.peek(carol)).map((m) => m.stanza), [4, 8].map((n) => message(n).stanza));
      assert.deepEqual(await offline.pushMany([], 3), []);
      // Later batches come after earlier ones.
      await offline.pushMany([{ owner: bob, ...message(9) }, { owner: bob, ...message(10) }], 10);
      assert.deepEqual((await offline.peek(bob)).map((m) => m.stanza), [2, 6, 9, 10].map((n) => message(n).stanza));
    });

    test('concurrent batches over the same accounts never overshoot the quota nor deadlock', async () => {
      const { offline } = opened.storage;
      const owners = Array.from({ length: 6 }, (_, i) => ({ username: `u${i}`, domain: 'example.com' }));
      const batches = Array.from({ length: 12 }, (_, b) =>
        // Each batch names every account five times, starting and running in different orders.
        Array.from({ length: 30 }, (_, i) => {
          const k = (i + b) % owners.length;
          return { owner: owners[b % 2 ? owners.length - 1 - k : k], ...message(b * 100 + i) };
        }));
      const refused = await Promise.all(batches.map((batch) => offline.pushMany(batch, 25)));
      const stored = batches.reduce((sum, batch, b) => sum + batch.length - refused[b].length, 0);
      assert.equal(stored, 25 * owners.length);
      for (const owner of owners) assert.equal(await offline.count(owner), 25);
    });

    // Only PostgreSQL is shared by several server processes; an SQLite file serves one.
    if (backend.name === 'postgres') test('two server processes on one database: what is delivered while others store is never lost or repeated', async () => {
      // A second Storage instance on the same database, as a second server process would have.
      const other = await openStorage(opened.options, pino({ level: 'silent' }));
      try {
        let next = 0;
        // Batches of 1 to 8 of messages 0..599, taken in turn by several writers.
        const write = async (offline: OfflineStore) => {
          while (next < 600) {
            const size = Math.min(600 - next, 1 + Math.floor(Math.random() * 8));
            const batch = Array.from({ length: size }, () => ({ owner: alice, ...message(next++) }));
            assert.deepEqual(await offline.pushMany(batch, 10_000), []);
            await new Promise((resolve) => setImmediate(resolve));
          }
        };
        const writing = Promise.all([write(opened.storage.offline), write(other.offline), write(other.offline)]);
        let written = false;
        void writing.then(() => { written = true; });
        // Meanwhile the first process delivers, as at each login: read the queue, delete up to its last.
        const delivered: string[] = [];
        for (;;) {
          const done = written;
          const queued = await opened.storage.offline.peek(alice);
          if (queued.length > 0) {
            delivered.push(...queued.map((m) => m.stanza));
            await opened.storage.offline.remove(alice, queued[queued.length - 1].seq);
          } else if (done) {
            break;
          }
        }
        await writing;
        assert.equal(delivered.length, 600, 'every message delivered once');
        assert.deepEqual([...delivered].sort(), Array.from({ length: 600 }, (_, n) => message(n).stanza).sort());
      } finally {
        await other.close();
      }
    });

    test('removing the account deletes its queue only', async () => {
      const { storage } = opened;
      await storage.offline.push(alice, message(1), 10);
      await storage.offline.push(bob, message(2), 10);
      await storage.removeAccount(alice);
      assert.equal(await storage.offline.count(alice), 0);
      assert.equal(await storage.offline.count(bob), 1);
    });
  });
}
