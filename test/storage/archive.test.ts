/**
 * The message archive store (XEP-0313), on every backend. Queries are checked against a
 * reference model (filter, sort by (timestamp, id), page) over every combination of fields.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { searchWords } from '../../src/storage/stores/archive-words.ts';
import {
  ArchiveIdNotFound,
  type ArchivedMessage, type ArchivePage, type ArchiveQuery, type Storage, type UserRef,
} from '../../src/storage/types.ts';
import { storageBackends, type OpenedBackend } from '../support/storage-backends.ts';

const alice: UserRef = { username: 'alice', domain: 'example.com' };
const bob: UserRef = { username: 'bob', domain: 'example.com' };
const aliceElsewhere: UserRef = { username: 'alice', domain: 'example.org' };
const T0 = 1_700_000_000_000;

/** Fixed-width, so string order is numeric order, as the module's stanza-ids are. */
const stanzaId = (n: number) => `id${String(n).padStart(8, '0')}`;

interface Spec {
  owner?: UserRef;
  with?: string;
  resource?: string;
  direction?: 'in' | 'out';
  at?: number;
  body?: string;
}

function msg(n: number, spec: Spec = {}): ArchivedMessage {
  const message: ArchivedMessage = {
    id: stanzaId(n),
    owner: spec.owner ?? alice,
    with: spec.with ?? 'bob@example.com',
    withResource: spec.resource ?? '',
    direction: spec.direction ?? (n % 2 ? 'in' : 'out'),
    timestamp: spec.at ?? T0 + n * 1000,
    stanza: `<message id="m${n}" type="chat"><body>${spec.body ?? ''}</body></message>`,
  };
  if (spec.body !== undefined) message.body = spec.body;
  return message;
}

const VOCABULARY = ['alpha', 'bravo', 'charlie', 'delta', 'Écho', 'ÉCHO', 'фокстрот', '高尔夫'];

/**
 * 300 messages for alice with three partners (one with resources), runs of equal timestamps
 * (tie-broken by id), some without body; plus messages of other owners that must never show.
 */
function corpus(): ArchivedMessage[] {
  const partners = [
    { with: 'bob@example.com', resource: 'phone' },
    { with: 'bob@example.com', resource: 'laptop' },
    { with: 'carol@example.net', resource: '' },
    { with: 'room@muc.example.com', resource: 'dave' },
  ];
  const messages: ArchivedMessage[] = [];
  for (let n = 1; n <= 300; n++) {
    const partner = partners[(n * 7) % partners.length];
    // 30 distinct timestamps: ten messages each, ordered among themselves by id.
    const at = T0 + Math.floor((n - 1) / 10) * 60_000;
    const body = n % 9 === 0 ? undefined : [VOCABULARY[n % 8], VOCABULARY[(n * 3) % 8], `n${n}`].join(n % 2 ? ' ' : ', ');
    messages.push(msg(n, { ...partner, at, body }));
  }
  messages.push(msg(1001, { owner: bob, body: 'alpha bravo' }), msg(1002, { owner: aliceElsewhere, body: 'alpha' }));
  return messages;
}

const key = (m: ArchivedMessage) => `${String(m.timestamp).padStart(16, '0')}|${m.id}`;
const same = (a: UserRef, b: UserRef) => a.username === b.username && a.domain === b.domain;

/** What a query must return, computed the slow and obvious way. */
function model(all: readonly ArchivedMessage[], q: ArchiveQuery): ArchivePage {
  const words = q.text === undefined ? undefined : searchWords(q.text);
  const matches = all
    .filter((m) => same(m.owner, q.owner))
    .filter((m) => !q.with || (m.with === q.with.bare && (!q.with.resource || m.withResource === q.with.resource)))
    .filter((m) => q.start === undefined || m.timestamp >= q.start)
    .filter((m) => q.end === undefined || m.timestamp <= q.end)
    .filter((m) => q.ids === undefined || q.ids.includes(m.id))
    .filter((m) => words === undefined || (words.length > 0 && words.every((w) => searchWords(m.body ?? '').includes(w))))
    .sort((a, b) => (key(a) < key(b) ? -1 : 1));
  const keyOfId = (id: string) => key(all.find((m) => same(m.owner, q.owner) && m.id === id)!);
  const afterKey = q.afterId === undefined ? undefined : keyOfId(q.afterId);
  const beforeKey = q.beforeId === undefined ? undefined : keyOfId(q.beforeId);
  const range = matches.filter((m) => (afterKey === undefined || key(m) > afterKey) && (beforeKey === undefined || key(m) < beforeKey));
  const page = q.fromEnd ? range.slice(Math.max(0, range.length - q.max)) : range.slice(0, q.max);
  let firstIndex: number;
  if (page.length > 0) firstIndex = matches.indexOf(page[0]);
  else if (q.fromEnd) firstIndex = beforeKey === undefined ? matches.length : matches.filter((m) => key(m) < beforeKey).length;
  else firstIndex = afterKey === undefined ? 0 : matches.filter((m) => key(m) <= afterKey).length;
  return { messages: page, complete: range.length <= q.max, count: matches.length, firstIndex };
}

const ids = (page: ArchivePage) => page.messages.map((m) => m.id);

function assertPage(actual: ArchivePage, expected: ArchivePage, what: string): void {
  assert.deepEqual(
    { ids: ids(actual), complete: actual.complete, count: actual.count, firstIndex: actual.firstIndex },
    { ids: ids(expected), complete: expected.complete, count: expected.count, firstIndex: expected.firstIndex },
    what,
  );
}

for (const backend of storageBackends) {
  describe(`archive store (${backend.name})`, () => {
    let opened: OpenedBackend;
    let storage: Storage;
    beforeEach(async () => {
      opened = await backend.open();
      storage = opened.storage;
    });
    afterEach(() => opened.drop());

    test('stores and returns every field; messages without a body have none', async () => {
      const withBody = msg(1, { with: 'bob@example.com', resource: 'phone', direction: 'in', body: 'Hello <b>&amp;</b> 👋' });
      const withoutBody = msg(2, { with: 'carol@example.net', direction: 'out' });
      await storage.archive.append([withBody, withoutBody]);
      const page = await storage.archive.query({ owner: alice, max: 10, fromEnd: false });
      assert.deepEqual(page, { messages: [withBody, withoutBody], complete: true, count: 2, firstIndex: 0 });
      assert.equal('body' in page.messages[1], false);
      assert.deepEqual(await storage.archive.query({ owner: bob, max: 10, fromEnd: false }), { messages: [], complete: true, count: 0, firstIndex: 0 });
    });

    test('every query field and combination agrees with the reference model', async () => {
      const all = corpus();
      // Appended out of order, in several batches: order comes from (timestamp, id), not arrival.
      const shuffled = [...all].sort((a, b) => (a.id.split('').reverse().join('') < b.id.split('').reverse().join('') ? -1 : 1));
      for (let i = 0; i < shuffled.length; i += 70) await storage.archive.append(shuffled.slice(i, i + 70));
      const mine = all.filter((m) => same(m.owner, alice)).sort((a, b) => (key(a) < key(b) ? -1 : 1));

      const withs = [undefined, { bare: 'bob@example.com' }, { bare: 'bob@example.com', resource: 'laptop' }, { bare: 'carol@example.net' }, { bare: 'nobody@example.com' }];
      const starts = [undefined, mine[95].timestamp];
      const ends = [undefined, mine[250].timestamp];
      const idSets = [undefined, [mine[3].id, mine[150].id, mine[151].id, mine[299].id, stanzaId(1001), 'nonexistent']];
      const texts = [undefined, 'alpha', 'ALPHA charlie', 'echo', 'фокстрот', '高尔夫 bravo', '!!!'];
      const cursors: { afterId?: string; beforeId?: string }[] = [{}, { afterId: mine[100].id }, { beforeId: mine[200].id }, { afterId: mine[55].id, beforeId: mine[244].id }];
      let checked = 0;
      for (const withJid of withs) for (const start of starts) for (const end of ends) for (const idSet of idSets) for (const text of texts) {
        for (const cursor of cursors) for (const max of [0, 7, 1000]) for (const fromEnd of [false, true]) {
          // Trim the cross product: every field combination, a rotating subset of page shapes.
          if ((checked++ % 5) !== 0 && max !== 7) continue;
          const q: ArchiveQuery = { owner: alice, max, fromEnd, ...cursor };
          if (withJid) q.with = withJid;
          if (start !== undefined) q.start = start;
          if (end !== undefined) q.end = end;
          if (idSet) q.ids = idSet;
          if (text !== undefined) q.text = text;
          assertPage(await storage.archive.query(q), model(all, q), JSON.stringify(q));
        }
      }
    });

    test('full JID and bare JID filters; messages are returned whole', async () => {
      const all = corpus();
      await storage.archive.append(all);
      const page = await storage.archive.query({ owner: alice, with: { bare: 'bob@example.com', resource: 'phone' }, max: 1000, fromEnd: false });
      assert.ok(page.messages.length > 0);
      for (const m of page.messages) assert.deepEqual(m, all.find((x) => same(x.owner, alice) && x.id === m.id));
      assert.ok(page.messages.every((m) => m.withResource === 'phone'));
    });

    test('paging forward and backward over many pages: no gaps, no duplicates, right count and index', async () => {
      // 1,000 messages in 40 timestamps: most pages start and end inside a run of equal times.
      const all = Array.from({ length: 1000 }, (_, i) => msg(i + 1, { at: T0 + Math.floor(i / 25) * 1000, body: i % 3 ? 'ping pong' : 'ping' }));
      for (let i = 0; i < all.length; i += 250) await storage.archive.append(all.slice(i, i + 250));
      for (const text of [undefined, 'pong']) {
        const expected = all.filter((m) => text === undefined || m.body!.includes(text)).map((m) => m.id);
        for (const max of [1, 7, 25, 100]) {
          const forward: string[] = [];
          let afterId: string | undefined;
          for (let pages = 0; ; pages++) {
            assert.ok(pages <= expected.length, 'paging terminates');
            const page = await storage.archive.query({ owner: alice, max, fromEnd: false, ...(text ? { text } : {}), ...(afterId ? { afterId } : {}) });
            assert.equal(page.count, expected.length);
            assert.equal(page.firstIndex, forward.length);
            forward.push(...ids(page));
            if (page.complete) break;
            afterId = page.messages.at(-1)!.id;
          }
          assert.deepEqual(forward, expected, `forward, max ${max}, text ${text}`);

          const backward: string[] = [];
          let beforeId: string | undefined;
          for (;;) {
            const page = await storage.archive.query({ owner: alice, max, fromEnd: true, ...(text ? { text } : {}), ...(beforeId ? { beforeId } : {}) });
            assert.equal(page.count, expected.length);
            assert.equal(page.firstIndex, expected.length - backward.length - page.messages.length);
            backward.unshift(...ids(page));
            if (page.complete) break;
            beforeId = page.messages[0].id;
          }
          assert.deepEqual(backward, expected, `backward, max ${max}, text ${text}`);
        }
      }
    });

    test('the last page, a page at an exact boundary, and an empty archive', async () => {
      await storage.archive.append(Array.from({ length: 20 }, (_, i) => msg(i + 1, { at: T0 })));
      const last = await storage.archive.query({ owner: alice, max: 5, fromEnd: true });
      assert.deepEqual(ids(last), [16, 17, 18, 19, 20].map(stanzaId));
      assert.deepEqual([last.complete, last.count, last.firstIndex], [false, 20, 15]);
      const exact = await storage.archive.query({ owner: alice, max: 5, fromEnd: false, afterId: stanzaId(15) });
      assert.deepEqual(ids(exact), ids(last));
      assert.equal(exact.complete, true, 'nothing after it');
      const beyond = await storage.archive.query({ owner: alice, max: 5, fromEnd: false, afterId: stanzaId(20) });
      assert.deepEqual(beyond, { messages: [], complete: true, count: 20, firstIndex: 20 });
      const countOnly = await storage.archive.query({ owner: alice, max: 0, fromEnd: true });
      assert.deepEqual(countOnly, { messages: [], complete: false, count: 20, firstIndex: 20 });
      assert.deepEqual(await storage.archive.query({ owner: bob, max: 5, fromEnd: true }), { messages: [], complete: true, count: 0, firstIndex: 0 });
    });

    test('an unknown after or before id, or another owner\'s, is an error', async () => {
      await storage.archive.append([msg(1), msg(2), msg(3, { owner: bob })]);
      for (const bounds of [{ afterId: 'nope' }, { beforeId: 'nope' }, { afterId: stanzaId(1), beforeId: stanzaId(3) }]) {
        await assert.rejects(storage.archive.query({ owner: alice, max: 10, fromEnd: false, ...bounds }), (error: unknown) => {
          assert.ok(error instanceof ArchiveIdNotFound);
          assert.equal(error.id, bounds.beforeId ?? bounds.afterId);
          return true;
        });
      }
      // Even when another filter would match nothing anyway.
      await assert.rejects(storage.archive.query({ owner: alice, ids: [], max: 10, fromEnd: false, afterId: 'nope' }), ArchiveIdNotFound);
    });

    test('ids: exactly the listed messages of the owner, in archive order, paged', async () => {
      await storage.archive.append([...Array.from({ length: 10 }, (_, i) => msg(i + 1)), msg(11, { owner: bob })]);
      const page = await storage.archive.query({ owner: alice, ids: [stanzaId(7), stanzaId(2), stanzaId(11), stanzaId(7), 'x', stanzaId(9)], max: 2, fromEnd: false });
      assert.deepEqual([ids(page), page.complete, page.count], [[stanzaId(2), stanzaId(7)], false, 3]);
      assert.deepEqual((await storage.archive.query({ owner: alice, ids: [], max: 10, fromEnd: false })).count, 0);
    });

    test('text search: every word, whole words, any case, Latin accents folded, any script', async () => {
      const bodies = [
        'Patient in room 12 needs a CT scan',
        'Scan results: normal. Café at noon?',
        'Le café est prêt',
        'Пациент в палате 12',
        'ΚΑΛΗΜΕΡΑ σας',
        '患者 需要 检查',
        'ich heiße Jürgen; straße',
        'no body matches here: scanning, scanned',
        'emoji 🚑 ambulance',
        'quotes "scan" AND NEAR(x) * \'it\'s\' \\ -minus ^caret col:on',
      ];
      await storage.archive.append(bodies.map((body, i) => msg(i + 1, { body })));
      await storage.archive.append([msg(100, { owner: bob, body: 'scan café' })]);
      const found = async (text: string) => (await storage.archive.query({ owner: alice, text, max: 100, fromEnd: false })).messages.map((m) => Number(m.id.slice(2)));
      assert.deepEqual(await found('scan'), [1, 2, 10]);
      assert.deepEqual(await found('SCAN ct'), [1]);
      assert.deepEqual(await found('scan  patient\tneeds'), [1]);
      assert.deepEqual(await found('scan missing'), []);
      assert.deepEqual(await found('cafe'), [2, 3]);
      assert.deepEqual(await found('CAFÉ prêt'), [3]);
      assert.deepEqual(await found('пациент'), [4]);
      assert.deepEqual(await found('ПАЛАТЕ 12'), [4]);
      assert.deepEqual(await found('καλημερα'), [5]);
      assert.deepEqual(await found('检查'), [6]);
      assert.deepEqual(await found('JÜRGEN heiße'), [7]);
      assert.deepEqual(await found('🚑 ambulance'), [9], 'symbols are not words');
      assert.deepEqual(await found('"scan" AND'), [10], 'query syntax of either database is plain text');
      assert.deepEqual(await found('near * it\'s'), [10]);
      assert.deepEqual(await found('col:on'), [10]);
      assert.deepEqual(await found('scann'), [], 'no prefix or stem matching');
      assert.deepEqual(await found('?!'), [], 'no word, no match');
      assert.deepEqual(await found(''), []);
      const page = await storage.archive.query({ owner: alice, text: 'scan', max: 1, fromEnd: true });
      assert.deepEqual([ids(page), page.count, page.firstIndex, page.complete], [[stanzaId(10)], 3, 2, false]);
    });

    test('appending a message again (a retried batch) changes nothing', async () => {
      await storage.archive.append([msg(1, { body: 'once' }), msg(2, { body: 'twice' })]);
      await storage.archive.append([msg(2, { body: 'twice' }), msg(3, { body: 'thrice' }), msg(3, { body: 'thrice' })]);
      const page = await storage.archive.query({ owner: alice, max: 10, fromEnd: false });
      assert.deepEqual(ids(page), [1, 2, 3].map(stanzaId));
      assert.equal((await storage.archive.query({ owner: alice, text: 'twice', max: 10, fromEnd: false })).count, 1);
      assert.equal((await storage.archive.query({ owner: alice, text: 'thrice', max: 10, fromEnd: false })).count, 1);
      // The same id under another owner is another message.
      await storage.archive.append([msg(1, { owner: bob, body: 'once' })]);
      assert.equal((await storage.archive.query({ owner: bob, max: 10, fromEnd: false })).count, 1);
    });

    test('bounds: the oldest and newest message', async () => {
      assert.equal(await storage.archive.bounds(alice), undefined);
      await storage.archive.append([msg(5, { at: T0 + 5 }), msg(2, { at: T0 + 5 }), msg(9, { at: T0 + 1 }), msg(1, { at: T0 + 9 })]);
      const bounds = await storage.archive.bounds(alice);
      assert.deepEqual([bounds?.first.id, bounds?.last.id], [stanzaId(9), stanzaId(1)]);
      assert.deepEqual(bounds?.last, msg(1, { at: T0 + 9 }));
    });

    test('preferences: absent until set, replaced whole', async () => {
      assert.equal(await storage.archive.getPrefs(alice), undefined);
      await storage.archive.setPrefs(alice, { default: 'roster', always: ['b@x.org', 'a@x.org', 'a@x.org'], never: ['spam@x.org'] });
      assert.deepEqual(await storage.archive.getPrefs(alice), { default: 'roster', always: ['a@x.org', 'b@x.org'], never: ['spam@x.org'] });
      await storage.archive.setPrefs(alice, { default: 'never', always: [], never: [] });
      assert.deepEqual(await storage.archive.getPrefs(alice), { default: 'never', always: [], never: [] });
      await storage.archive.setPrefs(bob, { default: 'always', always: ['same@x.org'], never: ['same@x.org'] });
      assert.deepEqual(await storage.archive.getPrefs(bob), { default: 'always', always: ['same@x.org'], never: ['same@x.org'] });
      assert.deepEqual(await storage.archive.getPrefs(alice), { default: 'never', always: [], never: [] });
    });

    test('purge: everything older than a time, for everyone or one owner, across many batches', async () => {
      const aliceMessages = Array.from({ length: 4500 }, (_, i) => msg(i + 1, { at: T0 + i, body: `word${i % 10} common` }));
      const bobMessages = Array.from({ length: 100 }, (_, i) => msg(i + 1, { owner: bob, at: T0 + i * 50, body: 'common' }));
      for (let i = 0; i < aliceMessages.length; i += 500) await storage.archive.append(aliceMessages.slice(i, i + 500));
      await storage.archive.append(bobMessages);

      assert.equal(await storage.archive.purgeBefore(T0 + 1000, bob), 20);
      assert.equal((await storage.archive.query({ owner: alice, max: 0, fromEnd: false })).count, 4500, 'other owners untouched');
      assert.equal(await storage.archive.purgeBefore(T0 + 4100), 4100 + 62, "alice's 4,100 and bob's next 62");
      const left = await storage.archive.query({ owner: alice, max: 1, fromEnd: false });
      assert.deepEqual([left.count, left.messages[0].id], [400, stanzaId(4101)]);
      assert.equal((await storage.archive.query({ owner: alice, text: 'common', max: 0, fromEnd: false })).count, 400);
      assert.equal((await storage.archive.query({ owner: bob, text: 'common', max: 0, fromEnd: false })).count, 18);
      assert.equal(await storage.archive.purgeBefore(T0), 0);
    });

    test('the search index forgets deleted messages, even when a new message takes the old row number', async () => {
      // The newest row (highest row number) holds the oldest message, so the purge frees the
      // row number SQLite hands out next.
      await storage.archive.append([msg(1, { at: T0 + 1_000_000, body: 'keep' })]);
      await storage.archive.append([msg(2, { at: T0, body: 'secret words' })]);
      assert.equal(await storage.archive.purgeBefore(T0 + 1), 1);
      await storage.archive.append([msg(3, { at: T0 + 3_000_000, body: 'harmless' })]);
      assert.deepEqual(ids(await storage.archive.query({ owner: alice, text: 'secret', max: 10, fromEnd: false })), []);
      assert.deepEqual(ids(await storage.archive.query({ owner: alice, text: 'harmless', max: 10, fromEnd: false })), [stanzaId(3)]);
      if (backend.name === 'sqlite') {
        const { rows } = await sql<{ n: number }>`select count(*) as n from archive_search`.execute(opened.storage.db);
        assert.equal(rows[0].n, 2, 'one search row per stored body');
      }
    });

    test('removeAccount deletes the archive, its search rows and preferences, and nothing of others', async () => {
      await storage.archive.append([msg(1, { body: 'mine' }), msg(2, { body: 'mine too' }), msg(1, { owner: bob, body: 'mine' })]);
      await storage.archive.setPrefs(alice, { default: 'always', always: ['x@y.z'], never: [] });
      await storage.archive.setPrefs(bob, { default: 'roster', always: [], never: [] });
      await storage.offline.push(alice, { receivedAt: T0, stanza: '<message/>' }, 10);
      await storage.removeAccount(alice);
      assert.equal((await storage.archive.query({ owner: alice, max: 10, fromEnd: false })).count, 0);
      assert.equal(await storage.archive.getPrefs(alice), undefined);
      assert.equal(await storage.offline.count(alice), 0);
      assert.equal((await storage.archive.query({ owner: bob, text: 'mine', max: 10, fromEnd: false })).count, 1);
      assert.deepEqual(await storage.archive.getPrefs(bob), { default: 'roster', always: [], never: [] });
      if (backend.name === 'sqlite') {
        const { rows } = await sql<{ n: number }>`select count(*) as n from archive_search`.execute(opened.storage.db);
        assert.equal(rows[0].n, 1);
      }
    });

    test('counts stay exact through duplicates, purges and removal; deep pages know their index', async () => {
      // Two conversations, 12,000 messages: deep enough that a page's index is counted from
      // the start rather than the end.
      const all = Array.from({ length: 12_000 }, (_, i) => msg(i + 1, { with: i % 3 ? 'bob@example.com' : 'carol@example.net', at: T0 + Math.floor(i / 4) }));
      for (let i = 0; i < all.length; i += 1000) await storage.archive.append(all.slice(i, i + 1000));
      await storage.archive.append(all.slice(5000, 5100)); // again: no change
      const check = async (q: ArchiveQuery, what: string) => assertPage(await storage.archive.query(q), model(all, q), `${what}: ${JSON.stringify(q)}`);
      for (const withJid of [undefined, { bare: 'bob@example.com' }, { bare: 'carol@example.net' }]) {
        const base = { owner: alice, max: 20, ...(withJid ? { with: withJid } : {}) };
        for (const n of [2, 3000, 6001, 11_000, 11_990]) {
          await check({ ...base, fromEnd: false, afterId: stanzaId(n) }, 'after');
          await check({ ...base, fromEnd: true, beforeId: stanzaId(n) }, 'before');
          await check({ ...base, max: 0, fromEnd: false, afterId: stanzaId(n) }, 'empty after');
          await check({ ...base, max: 0, fromEnd: true, beforeId: stanzaId(n) }, 'empty before');
        }
        await check({ ...base, fromEnd: true }, 'last');
        await check({ ...base, fromEnd: false }, 'first');
      }
      const remaining = (cut: number) => all.filter((m) => m.timestamp >= cut);
      await storage.archive.purgeBefore(T0 + 1000);
      all.splice(0, all.length, ...remaining(T0 + 1000));
      await storage.archive.purgeBefore(T0 + 2000, alice);
      all.splice(0, all.length, ...remaining(T0 + 2000));
      await check({ owner: alice, max: 20, fromEnd: true }, 'after purges');
      await check({ owner: alice, with: { bare: 'carol@example.net' }, max: 20, fromEnd: false, afterId: all[100].id }, 'after purges');
      await storage.removeAccount(alice);
      await storage.archive.append([msg(1), msg(2, { with: 'carol@example.net' })]);
      const page = await storage.archive.query({ owner: alice, max: 10, fromEnd: true });
      assert.deepEqual([page.count, page.firstIndex], [2, 0]);
      assert.equal((await storage.archive.query({ owner: alice, with: { bare: 'carol@example.net' }, max: 10, fromEnd: true })).count, 1);
    });

    test('an invalid page size is refused', async () => {
      await assert.rejects(storage.archive.query({ owner: alice, max: -1, fromEnd: false }), RangeError);
      await assert.rejects(storage.archive.query({ owner: alice, max: 1.5, fromEnd: false }), RangeError);
    });
  });
}

describe('archive search words', () => {
  test('lower case, Latin accents folded, split at non-letters, deduplicated, long words cut', () => {
    assert.deepEqual(searchWords('Hello, WORLD! hello'), ['hello', 'world']);
    assert.deepEqual(searchWords('Café CRÈME brûlée naïve'), ['cafe', 'creme', 'brulee', 'naive']);
    assert.deepEqual(searchWords('İstanbul ǅemal ﬁle'), ['istanbul', 'dzemal', 'file']);
    assert.deepEqual(searchWords('नमस्ते दुनिया'), ['नमस्ते', 'दुनिया'], 'marks of other scripts are kept');
    assert.deepEqual(searchWords('a_b c-d e.f@g'), ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    assert.deepEqual(searchWords('🚑 !!'), []);
    assert.equal(searchWords('x'.repeat(100))[0].length, 64);
  });
});
