/**
 * Message archive (XEP-0313 store) on each backend: insert throughput, then query latency
 * on one large conversation.
 *
 *   node --import tsx bench/archive.ts [--messages 100000] [--batch 250] [--queries 200]
 *                                      [--backend sqlite|postgres|both] [--others 0]
 *
 * SQLite runs in a temporary file (WAL, synchronous=FULL: every batch is fsynced, as in the
 * server); PostgreSQL in a fresh schema of MEERKAT_BENCH_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432/test), dropped afterwards. `--others N` first archives N
 * messages spread over 1,000 other accounts, so the indexes are not the conversation's alone.
 *
 * Every query is a full ArchiveStore.query: page, `complete`, count and firstIndex, in one
 * read transaction, as the MAM module issues it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { openStorage, type SqlStorage, type StorageOptions } from '../src/storage/index.ts';
import type { ArchivedMessage, ArchiveQuery, UserRef } from '../src/storage/types.ts';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '250' },
    queries: { type: 'string', default: '200' },
    backend: { type: 'string', default: 'both' },
    others: { type: 'string', default: '0' },
  },
});
const MESSAGES = Number(args.messages);
const BATCH = Number(args.batch);
const QUERIES = Number(args.queries);
const OTHERS = Number(args.others);
const POSTGRES_URL = process.env.MEERKAT_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const alice: UserRef = { username: 'alice', domain: 'hospital.example' };
const BOB = 'bob@hospital.example';
const T0 = Date.UTC(2025, 0, 1);

const WORDS = ('patient room ward bed scan ct mri results normal abnormal please call me back when you can ' +
  'the a of to and in is it for on with at by this that from be are was were on-call nurse doctor ' +
  'pharmacy dose mg ml iv oral discharge admit consult urgent stat thanks ok yes no later today tomorrow').split(' ');

/** Deterministic pseudo-random numbers, so every run archives the same text. */
function generator(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fixed-width and sortable, as the MAM module's stanza-ids: time, then a counter. */
const stanzaId = (at: number, n: number) => `${at.toString(36).padStart(9, '0')}-${n.toString(36).padStart(6, '0')}`;

function message(owner: UserRef, withJid: string, n: number, random: () => number): ArchivedMessage {
  // Several messages per millisecond at times, as a burst would: ties are broken by id.
  const at = T0 + Math.floor(n * 1.7);
  const words = Array.from({ length: 3 + Math.floor(random() * 12) }, () => WORDS[Math.floor(random() * WORDS.length)]);
  if (n % 100 === 7) words.push('sepsis');
  const body = words.join(' ');
  const id = stanzaId(at, n);
  const direction = n % 2 ? 'in' : 'out';
  return {
    id,
    owner,
    with: withJid,
    withResource: direction === 'in' ? 'phone' : '',
    direction,
    timestamp: at,
    body,
    stanza: `<message xmlns="jabber:client" from="${direction === 'in' ? `${withJid}/phone` : `${owner.username}@${owner.domain}/pager`}" ` +
      `to="${direction === 'in' ? `${owner.username}@${owner.domain}` : withJid}" type="chat" id="c${n}"><body>${body}</body>` +
      `<stanza-id xmlns="urn:xmpp:sid:0" by="${owner.username}@${owner.domain}" id="${id}"/></message>`,
  };
}

interface Backend {
  name: string;
  options: StorageOptions;
  drop(): Promise<void>;
  /** After the inserts: what a running server's autovacuum would have done by then. */
  settle(storage: SqlStorage): Promise<void>;
}

async function sqliteBackend(): Promise<Backend> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meerkat-bench-archive-'));
  return {
    name: 'sqlite',
    options: { backend: 'sqlite', path: path.join(dir, 'meerkat.sqlite') },
    drop: () => rm(dir, { recursive: true, force: true }),
    settle: async () => {},
  };
}

async function postgresBackend(): Promise<Backend> {
  const schema = `meerkat_bench_${randomBytes(6).toString('hex')}`;
  const admin = async (text: string) => {
    const client = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  return {
    name: 'postgres',
    options: { backend: 'postgres', url: POSTGRES_URL, poolSize: 4, schema },
    drop: () => admin(`drop schema if exists "${schema}" cascade`),
    settle: () => admin('vacuum analyze archive_messages'),
  };
}

function summary(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `p50 ${at(0.5).toFixed(2)} ms  p99 ${at(0.99).toFixed(2)} ms  max ${sorted.at(-1)!.toFixed(2)} ms`;
}

async function time(storage: SqlStorage, queries: () => ArchiveQuery): Promise<{ ms: number[]; sample: string }> {
  const ms: number[] = [];
  let sample = '';
  for (let i = 0; i < 10; i++) await storage.archive.query(queries()); // warm up
  for (let i = 0; i < QUERIES; i++) {
    const q = queries();
    const started = performance.now();
    const page = await storage.archive.query(q);
    ms.push(performance.now() - started);
    sample = `${page.messages.length} messages, count ${page.count}, firstIndex ${page.firstIndex}`;
  }
  return { ms, sample };
}

async function run(backend: Backend): Promise<void> {
  const storage = await openStorage(backend.options, pino({ level: 'silent' }));
  try {
    const random = generator(42);
    if (OTHERS > 0) {
      for (let n = 0; n < OTHERS; n += BATCH) {
        const batch = Array.from({ length: Math.min(BATCH, OTHERS - n) }, (_, i) =>
          message({ username: `user${(n + i) % 1000}`, domain: 'hospital.example' }, `peer${(n + i) % 97}@hospital.example`, n + i, random));
        await storage.archive.append(batch);
      }
    }

    const ids: string[] = [];
    const started = performance.now();
    for (let n = 0; n < MESSAGES; n += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, MESSAGES - n) }, (_, i) => message(alice, BOB, n + i, random));
      for (const m of batch) ids.push(m.id);
      await storage.archive.append(batch);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`${backend.name}: inserted ${MESSAGES} messages in batches of ${BATCH}: ${Math.round(MESSAGES / seconds)} messages/s (${seconds.toFixed(1)} s)`);

    const pick = generator(7);
    const middle = () => ids[Math.floor(ids.length * (0.1 + 0.8 * pick()))];
    const cases: [string, () => ArchiveQuery][] = [
      ['last page (max 50)', () => ({ owner: alice, with: { bare: BOB }, max: 50, fromEnd: true })],
      ['last page, whole archive', () => ({ owner: alice, max: 50, fromEnd: true })],
      ['first page', () => ({ owner: alice, with: { bare: BOB }, max: 50, fromEnd: false })],
      ['deep page forward (after-id)', () => ({ owner: alice, with: { bare: BOB }, max: 50, fromEnd: false, afterId: middle() })],
      ['deep page backward (before-id)', () => ({ owner: alice, with: { bare: BOB }, max: 50, fromEnd: true, beforeId: middle() })],
      ['time range, last page', () => ({ owner: alice, max: 50, fromEnd: true, start: T0 + 30_000, end: T0 + 90_000 })],
      ['text search, last page', () => ({ owner: alice, text: 'sepsis', max: 50, fromEnd: true })],
      ['text search, 2 common words', () => ({ owner: alice, text: 'patient scan', max: 50, fromEnd: true })],
    ];
    for (const settled of [false, true]) {
      if (settled) {
        if (backend.name !== 'postgres') break;
        await backend.settle(storage);
        console.log(`${backend.name}: after VACUUM ANALYZE (what autovacuum does on a running server)`);
      }
      for (const [name, queries] of cases) {
        const { ms, sample } = await time(storage, queries);
        console.log(`  ${name.padEnd(32)} ${summary(ms)}   (${sample})`);
      }
    }
  } finally {
    await storage.close();
    await backend.drop();
  }
}

const wanted = args.backend === 'both' ? ['sqlite', 'postgres'] : [args.backend];
for (const name of wanted) {
  if (name !== 'sqlite' && name !== 'postgres') throw new Error(`unknown backend ${name}`);
  await run(name === 'sqlite' ? await sqliteBackend() : await postgresBackend());
}
