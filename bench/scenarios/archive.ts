/**
 * archive: message archive (XEP-0313) query latency on a large conversation, per storage
 * backend, over real XMPP; plus the store on its own. Meerkat only (other targets: skipped).
 *
 * Set-up (in the orchestrator, before the server starts; lib/archive-fill.ts): a fresh
 * database of the variant's backend (`sqlite` or `postgres`), accounts user1 and user2, and
 * an M-message conversation between them (--archive-messages, default 100,000) archived
 * through the storage layer (ArchiveStore.append in batches of --archive-batch), both sides,
 * exactly as the MAM module stores messages. That gives the insert rate and the store-level
 * latency of eight query kinds (PostgreSQL: before and after VACUUM ANALYZE; the server then
 * runs on the analysed database, as autovacuum would have left it). Then Meerkat starts with
 * [modules.mam] on.
 *
 * Measured here (generator process): user1 logs in and sends, one at a time, IQ set
 * <query xmlns='urn:xmpp:mam:2'> with the conversation's `with` and RSM <max>50</max>:
 *   last  <before/>: the last page (what a client shows when it opens the chat)
 *   deep  <after>ID</after>, ID 10-90 % into the conversation (scrolling / catching up)
 * 10 untimed queries first, then --archive-queries of each. Latency runs from sending the IQ
 * to its result (after all 50 forwarded messages arrived). Every answer is checked: 50
 * messages with this queryid, <count/> = M, <first index/> where that page must start.
 */
import { login } from '../lib/client.ts';
import { CpuMeter } from '../lib/proc.ts';
import { Histogram, round, type LatencySummary } from '../lib/stats.ts';
import { childText, rootAttr } from '../lib/stream.ts';
import { fmt, type Figures, type Scenario } from '../lib/scenario.ts';
import type { ArchiveHandoff, StoreCaseFigures } from '../lib/archive-fill.ts';

const NS_MAM = 'urn:xmpp:mam:2';
const NS_RSM = 'http://jabber.org/protocol/rsm';

interface PageAnswer {
  ms: number;
  messages: number;
  count: number | undefined;
  firstIndex: number | undefined;
  bytes: number;
  error?: string;
}

function queryIq(n: number, withJid: string, max: number, rsm: string): string {
  return `<iq type='set' id='mam${n}'><query xmlns='${NS_MAM}' queryid='q${n}'>` +
    `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${NS_MAM}</value></field>` +
    `<field var='with'><value>${withJid}</value></field></x>` +
    `<set xmlns='${NS_RSM}'><max>${max}</max>${rsm}</set></query></iq>`;
}

const ms = (l: unknown) => {
  const s = l as LatencySummary | undefined;
  return s === undefined ? '-' : `p50 ${fmt(s.p50, 2)}  p99 ${fmt(s.p99, 2)}  max ${fmt(s.max, 2)}`;
};

const scenario: Scenario = {
  name: 'archive',
  description: 'MAM query latency (last page, deep page) on a large conversation, per backend',
  variants: (options) => {
    for (const v of options.archiveVariants) if (v !== 'sqlite' && v !== 'postgres') throw new Error(`archive: unknown variant '${v}' (sqlite, postgres)`);
    return options.archiveVariants;
  },
  accounts: () => 2,
  setup: (variant) => ({
    storage: variant as 'sqlite' | 'postgres',
    config: { modules: { mam: { enabled: true } } },
    prepare: async (ctx) => (await import('../lib/archive-fill.ts')).fillArchive(ctx),
  }),
  async run(ctx) {
    const { endpoint, options } = ctx;
    const handoff = ctx.prepared as ArchiveHandoff | undefined;
    if (handoff === undefined) throw new Error('archive: no prepared archive (this scenario needs a Meerkat the bench starts)');
    const conn = await login({
      host: endpoint.host,
      port: endpoint.plainPort,
      domain: endpoint.domain,
      username: handoff.owner,
      password: endpoint.password,
      starttls: false,
      auth: 'PLAIN',
      resource: 'archive',
      timeoutMs: options.timeoutMs,
    });
    let n = 0;
    let current: { queryid: string; iqId: string; started: number; messages: number; bytes: number; resolve(a: PageAnswer): void } | undefined;
    conn.onElement = (raw, name) => {
      const q = current;
      if (q === undefined) return;
      if (name === 'message') {
        if (/queryid=['"]([^'"]*)['"]/.exec(raw)?.[1] === q.queryid) {
          q.messages++;
          q.bytes += raw.length;
        }
        return;
      }
      if (name !== 'iq' || rootAttr(raw, 'id') !== q.iqId) return;
      current = undefined;
      const answer: PageAnswer = { ms: performance.now() - q.started, messages: q.messages, bytes: q.bytes + raw.length, count: undefined, firstIndex: undefined };
      if (rootAttr(raw, 'type') !== 'result') {
        answer.error = /<([a-z-]+)[^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]/.exec(raw)?.[1] ?? 'error';
      } else {
        const count = childText(raw, 'count');
        answer.count = count === undefined ? undefined : Number(count);
        const index = /<first[^>]*\sindex=['"](\d+)['"]/.exec(raw)?.[1];
        answer.firstIndex = index === undefined ? undefined : Number(index);
      }
      q.resolve(answer);
    };
    const ask = (rsm: string): Promise<PageAnswer> => new Promise((resolve, reject) => {
      const id = ++n;
      const timer = setTimeout(() => reject(new Error(`archive: no answer to query ${id} within ${options.timeoutMs} ms`)), options.timeoutMs);
      current = { queryid: `q${id}`, iqId: `mam${id}`, started: performance.now(), messages: 0, bytes: 0, resolve: (a) => { clearTimeout(timer); resolve(a); } };
      conn.send(queryIq(id, handoff.with, handoff.pageSize, rsm));
    });

    const total = handoff.total;
    const size = handoff.pageSize;
    const failures: string[] = [];
    const check = (kind: string, a: PageAnswer, messages: number, firstIndex: number) => {
      const problem = a.error !== undefined ? `error <${a.error}/>`
        : a.messages !== messages ? `${a.messages} messages, expected ${messages}`
          : a.count !== total ? `count ${a.count}, expected ${total}`
            : messages > 0 && a.firstIndex !== firstIndex ? `first index ${a.firstIndex}, expected ${firstIndex}` : undefined;
      if (problem !== undefined) failures.push(`${kind}: ${problem}`);
    };
    const kinds: { key: 'last' | 'deep'; next(i: number): { rsm: string; messages: number; firstIndex: number } }[] = [
      { key: 'last', next: () => ({ rsm: '<before/>', messages: Math.min(size, total), firstIndex: Math.max(0, total - size) }) },
    ];
    if (handoff.deep.length > 0) {
      kinds.push({
        key: 'deep',
        next: (i) => {
          const { id, index } = handoff.deep[i % handoff.deep.length];
          return { rsm: `<after>${id}</after>`, messages: Math.min(size, total - index - 1), firstIndex: index + 1 };
        },
      });
    }

    const figures: Figures = {};
    const meter = new CpuMeter(endpoint.pid);
    const monotonicStart = Number(process.hrtime.bigint() / 1000n);
    let queries = 0; // timed
    let sent = 0; // all, warm-up included: the server's CPU covers them too
    for (const kind of kinds) {
      const histogram = new Histogram();
      let bytes = 0;
      for (let i = 0; i < 10 + options.archiveQueries; i++) {
        const expected = kind.next(i);
        const answer = await ask(expected.rsm);
        sent++;
        check(kind.key, answer, expected.messages, expected.firstIndex);
        if (i < 10) continue; // warm-up
        histogram.record(answer.ms);
        bytes += answer.bytes;
        queries++;
      }
      figures[`${kind.key}PageMs`] = histogram.summary();
      figures[`${kind.key}PageKiB`] = round(bytes / options.archiveQueries / 1024, 1);
    }
    const monotonicEnd = Number(process.hrtime.bigint() / 1000n);
    const cpu = meter.read();
    conn.close();
    return {
      conversation: total,
      pageSize: size,
      queries: options.archiveQueries,
      ...figures,
      checkFailures: failures.length,
      firstCheckFailures: failures.slice(0, 5),
      ...cpu,
      // /proc counts CPU in 10 ms ticks: meaningful with the default number of queries, not in a smoke run.
      serverCpuMsPerQuery: cpu.serverCpuS === null || sent === 0 ? null : round((cpu.serverCpuS * 1000) / sent, 3),
      windowMonotonicUs: [monotonicStart, monotonicEnd],
    };
  },
  rows(f) {
    const rows: [string, string][] = [
      ['archive', `${fmt(f.messages)}-message conversation in both archives (${fmt(f.archivedRows)} archived messages${Number(f.others) > 0 ? ` + ${fmt(f.others)} of other accounts` : ''})`],
      ['store: insert', `${fmt(f.insertRowsPerSec)} archived messages/s (batches of ${fmt(f.batch)}, ${fmt(f.fillSeconds, 2)} s)`],
    ];
    const labels = (f.storeCases ?? {}) as Record<string, string>;
    const store = (title: string, cases: unknown) => {
      for (const [key, c] of Object.entries((cases ?? {}) as Record<string, StoreCaseFigures>)) {
        rows.push([`${title}: ${labels[key] ?? key} ms`, `${ms(c.latencyMs)}   (${c.page} messages, count ${fmt(c.count)})`]);
      }
    };
    if (f.storeBeforeAnalyze !== undefined) store('store, before ANALYZE', f.storeBeforeAnalyze);
    store('store', f.store);
    rows.push(
      ['XMPP: last page ms', `${ms(f.lastPageMs)}   (${fmt(f.lastPageKiB)} KiB)`],
      ['XMPP: deep page ms', `${ms(f.deepPageMs)}   (${fmt(f.deepPageKiB)} KiB)`],
      ['checks failed', `${fmt(f.checkFailures)}${Number(f.checkFailures) > 0 ? ` ${JSON.stringify(f.firstCheckFailures)}` : ''}`],
      ['CPU % of a core', `server ${fmt(f.serverCpuPct)}  generator ${fmt(f.generatorCpuPct)}  other processes ${fmt(f.otherCpuPct)}`],
      ['server CPU per query', `${fmt(f.serverCpuMsPerQuery, 2)} ms`],
    );
    return rows;
  },
  headline(f) {
    const last = f.lastPageMs as LatencySummary | undefined;
    const deep = f.deepPageMs as LatencySummary | undefined;
    return {
      'insert/s': fmt(f.insertRowsPerSec),
      'last p50 ms': fmt(last?.p50, 2),
      'last p99 ms': fmt(last?.p99, 2),
      'deep p50 ms': fmt(deep?.p50, 2),
      'deep p99 ms': fmt(deep?.p99, 2),
      'checks failed': fmt(f.checkFailures),
    };
  },
};

export default scenario;
