/**
 * The archive scenario's preparation, run by the orchestrator on a fresh database before the
 * server starts (see VariantSetup): it fills the message archive through the server's own
 * storage layer (ArchiveStore.append in batches, as the MAM module's write queue does) and
 * measures the store on its own: insert rate, then the latency of eight kinds of
 * ArchiveStore.query (each a full query as the MAM module issues it: page, `complete`,
 * count and firstIndex in one read transaction).
 *
 * What is archived, and how it looks, follows src/modules/mam: a conversation of M messages
 * between user1 and user2 (chat messages with a body and an origin-id, sent from a resource,
 * `from` stamped by the server) is archived twice, once in each side's archive, each copy
 * under an id of that archive from the server's own stanza-id generator, with <stanza-id/>
 * in the stored stanza. Timestamps lie in the past (about 40 s apart on average, with
 * bursts), so live traffic sorts after them. With --archive-others N, N messages of 1,000
 * other accounts are archived first, so the indexes hold more than this one conversation.
 * Bodies come from a fixed word list with a seeded generator: every run archives the same
 * text (every 100th message contains the rare word "sepsis").
 *
 * This file was bench/archive.ts, a standalone store benchmark; the archive scenario
 * supersedes it and adds the same queries over XMPP.
 */
import { StanzaIdGenerator, stanzaIdElement } from '../../src/modules/mam/stanza-id.ts';
import { el } from '../../src/xml/element.ts';
import type { ArchivedMessage, ArchiveQuery, SqlStorage, UserRef } from '../../src/storage/index.ts';
import type { Figures, PrepareContext } from './scenario.ts';
import { Histogram, round, type LatencySummary } from './stats.ts';

/** What the generator needs to query the conversation over XMPP. */
export interface ArchiveHandoff {
  /** Localpart of the archive owner who queries (user1) and bare JID of the other side (user2). */
  owner: string;
  with: string;
  /** Messages of the conversation in the owner's archive. */
  total: number;
  /** Ids deep in the owner's archive (10-90 % in), with their index in the conversation. */
  deep: { id: string; index: number }[];
  pageSize: number;
}

export const PAGE_SIZE = 50;

const WORDS = ('patient room ward bed scan ct mri results normal abnormal please call me back when you can ' +
  'the a of to and in is it for on with at by this that from be are was were on-call nurse doctor ' +
  'pharmacy dose mg ml iv oral discharge admit consult urgent stat thanks ok yes no later today tomorrow').split(' ');

/** Deterministic pseudo-random numbers (mulberry32), so every run archives the same text. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function body(n: number, random: () => number): string {
  const words = Array.from({ length: 3 + Math.floor(random() * 12) }, () => WORDS[Math.floor(random() * WORDS.length)]);
  if (n % 100 === 7) words.push('sepsis');
  return words.join(' ');
}

/**
 * One message of a conversation as the MAM module archives it for `owner`: the stanza as the
 * sender's client sent it, `from` stamped with the sender's full JID, the owner's stanza-id
 * appended, jabber:client namespace.
 */
function archived(owner: UserRef, ownerJid: string, sender: string, recipient: string, n: number, text: string, id: string, timestamp: number): ArchivedMessage {
  const outgoing = sender.startsWith(`${ownerJid}/`);
  const peer = outgoing ? recipient : sender;
  const slash = peer.indexOf('/');
  const stanza = el('message', { to: recipient.split('/')[0], type: 'chat', id: `m${n}`, from: sender },
    el('body', {}, text),
    el('origin-id', { xmlns: 'urn:xmpp:sid:0', id: `o${n}` }),
    stanzaIdElement(id, ownerJid));
  stanza.attrs.xmlns = 'jabber:client';
  return {
    id,
    owner,
    with: slash === -1 ? peer : peer.slice(0, slash),
    withResource: slash === -1 ? '' : peer.slice(slash + 1),
    direction: outgoing ? 'out' : 'in',
    timestamp,
    body: text,
    stanza: stanza.toString(),
  };
}

/**
 * Archives a `count`-message conversation between `a` and `b` (both sides), `batch` archived
 * messages per append; `onMessage` sees each of a's copies with its index in a's archive.
 */
async function archiveConversation(
  storage: SqlStorage, a: UserRef, b: UserRef, count: number, batch: number, firstTimestamp: number, random: () => number,
  onMessage?: (copy: ArchivedMessage, index: number) => void,
): Promise<void> {
  const ids = new StanzaIdGenerator();
  const jidA = `${a.username}@${a.domain}`;
  const jidB = `${b.username}@${b.domain}`;
  let at = firstTimestamp;
  let pending: ArchivedMessage[] = [];
  for (let n = 0; n < count; n++) {
    // Mostly tens of seconds apart, sometimes a burst within a second or two.
    at += random() < 0.3 ? Math.floor(random() * 2000) : Math.floor(random() * 120_000);
    const fromA = random() < 0.5;
    const sender = fromA ? `${jidA}/phone` : `${jidB}/desktop`;
    const recipient = fromA ? jidB : jidA;
    const text = body(n, random);
    // Each side's copy gets its own id, as the sender's and the recipient's archive assign them.
    const first = ids.next(at);
    const second = ids.next(at);
    const copyA = archived(a, jidA, sender, recipient, n, text, fromA ? first.id : second.id, at);
    const copyB = archived(b, jidB, sender, recipient, n, text, fromA ? second.id : first.id, at);
    onMessage?.(copyA, n);
    pending.push(...(fromA ? [copyA, copyB] : [copyB, copyA]));
    if (pending.length >= batch) {
      await storage.archive.append(pending);
      pending = [];
    }
  }
  if (pending.length > 0) await storage.archive.append(pending);
}

interface StoreCase {
  key: string;
  label: string;
  query(): ArchiveQuery;
}

export async function fillArchive(ctx: PrepareContext): Promise<{ figures: Figures; handoff: ArchiveHandoff }> {
  const { storage, options, domain } = ctx;
  const total = options.archiveMessages;
  const batch = options.archiveBatch;
  const owner: UserRef = { username: `${options.userPrefix}1`, domain };
  const peer: UserRef = { username: `${options.userPrefix}2`, domain };
  const withJid = `${peer.username}@${domain}`;
  const now = Date.now();
  // The conversation ends about an hour ago; it started ~40 s per message before.
  const firstTimestamp = now - 3_600_000 - total * 42_000;

  if (options.archiveOthers > 0) {
    const started = performance.now();
    // Others: 1,000 accounts, each in conversation with one of 97 peers, interleaved in time.
    const perOwner = Math.ceil(options.archiveOthers / 1000);
    const random = seeded(1);
    for (let o = 0; o < 1000 && o * perOwner < options.archiveOthers; o++) {
      const count = Math.min(perOwner, options.archiveOthers - o * perOwner);
      await archiveConversation(storage, { username: `other${o}`, domain }, { username: `peer${o % 97}`, domain }, Math.ceil(count / 2), batch, firstTimestamp, random);
    }
    ctx.log(`archive: ${options.archiveOthers} other messages archived in ${((performance.now() - started) / 1000).toFixed(1)}s`);
  }

  // The conversation, timed: every message archived in both archives.
  const positions = new Set<number>();
  const pick = seeded(7);
  // At most 1,000 (queries cycle through them): they travel to the generator in an environment variable.
  const deepCount = Math.min(options.archiveQueries + 10, 1000, Math.max(1, Math.floor(total * 0.8)));
  for (let tries = 0; positions.size < deepCount && total > 1 && tries < 100 * deepCount; tries++) positions.add(Math.min(total - 2, Math.floor(total * (0.1 + 0.8 * pick()))));
  const deep: { id: string; index: number }[] = [];
  const ownerIds: string[] = [];
  ctx.log(`archive: filling ${total} messages × 2 archives (${ctx.backend}, batches of ${batch})`);
  const started = performance.now();
  await archiveConversation(storage, owner, peer, total, batch, firstTimestamp, seeded(42), (copy, index) => {
    ownerIds.push(copy.id);
    if (positions.has(index)) deep.push({ id: copy.id, index });
  });
  const fillSeconds = (performance.now() - started) / 1000;
  const rows = 2 * total;
  ctx.log(`archive: ${rows} archived messages in ${fillSeconds.toFixed(1)}s (${Math.round(rows / fillSeconds)}/s)`);
  // Deep ids in random order, not archive order.
  deep.sort((x, y) => (x.id < y.id ? -1 : 1));
  const shuffle = seeded(11);
  for (let i = deep.length - 1; i > 0; i--) {
    const j = Math.floor(shuffle() * (i + 1));
    [deep[i], deep[j]] = [deep[j], deep[i]];
  }

  const middle = (() => {
    let i = 0;
    return () => deep[i++ % deep.length]?.id ?? ownerIds[0];
  })();
  const span = [firstTimestamp, now];
  const cases: StoreCase[] = [
    { key: 'lastPage', label: 'last page of the conversation', query: () => ({ owner, with: { bare: withJid }, max: PAGE_SIZE, fromEnd: true }) },
    { key: 'lastPageAll', label: 'last page, whole archive', query: () => ({ owner, max: PAGE_SIZE, fromEnd: true }) },
    { key: 'firstPage', label: 'first page', query: () => ({ owner, with: { bare: withJid }, max: PAGE_SIZE, fromEnd: false }) },
    { key: 'deepAfter', label: 'deep page forward (after id)', query: () => ({ owner, with: { bare: withJid }, max: PAGE_SIZE, fromEnd: false, afterId: middle() }) },
    { key: 'deepBefore', label: 'deep page backward (before id)', query: () => ({ owner, with: { bare: withJid }, max: PAGE_SIZE, fromEnd: true, beforeId: middle() }) },
    {
      key: 'timeRange', label: 'time range (1 % of it), last page',
      query: () => ({ owner, max: PAGE_SIZE, fromEnd: true, start: span[0] + (span[1] - span[0]) * 0.3, end: span[0] + (span[1] - span[0]) * 0.31 }),
    },
    { key: 'textRare', label: 'full text, rare word, last page', query: () => ({ owner, text: 'sepsis', max: PAGE_SIZE, fromEnd: true }) },
    { key: 'textCommon', label: 'full text, 2 common words, last page', query: () => ({ owner, text: 'patient scan', max: PAGE_SIZE, fromEnd: true }) },
  ];

  const measure = async (): Promise<Record<string, StoreCaseFigures>> => {
    const out: Record<string, StoreCaseFigures> = {};
    for (const c of cases) out[c.key] = await timeQueries(storage, c.query, options.archiveQueries);
    return out;
  };
  const figures: Figures = {
    messages: total,
    others: options.archiveOthers,
    batch,
    archivedRows: rows,
    fillSeconds: round(fillSeconds, 2),
    insertRowsPerSec: round(rows / fillSeconds, 1),
  };
  if (ctx.backend === 'postgres' && ctx.admin !== undefined) {
    // Planner statistics right after a bulk load are those of an empty table; a running
    // server's autovacuum would have analysed it by now. Both are reported.
    ctx.log('archive: store-level queries before ANALYZE');
    figures.storeBeforeAnalyze = await measure();
    await ctx.admin('vacuum analyze archive_messages');
  }
  ctx.log(`archive: store-level queries (${options.archiveQueries} per kind)`);
  figures.store = await measure();
  figures.storeCases = Object.fromEntries(cases.map((c) => [c.key, c.label]));
  return { figures, handoff: { owner: owner.username, with: withJid, total, deep, pageSize: PAGE_SIZE } };
}

export interface StoreCaseFigures {
  latencyMs: LatencySummary;
  /** Messages in the last page returned, and the query's count. */
  page: number;
  count: number;
}

async function timeQueries(storage: SqlStorage, query: () => ArchiveQuery, n: number): Promise<StoreCaseFigures> {
  const histogram = new Histogram();
  let page = 0;
  let count = 0;
  for (let i = 0; i < Math.min(10, n); i++) await storage.archive.query(query()); // warm-up
  for (let i = 0; i < n; i++) {
    const q = query();
    const started = performance.now();
    const result = await storage.archive.query(q);
    histogram.record(performance.now() - started);
    page = result.messages.length;
    count = result.count;
  }
  return { latencyMs: histogram.summary(), page, count };
}
