/**
 * Keeps the benchmark suite from rotting: its pieces on their own (stream splitting, the
 * latency histogram, the client SCRAM against the server's SCRAM, the bench config against
 * the config schema, chat variant names), then a tiny `npm run bench` against a real
 * Meerkat: once with the basic scenarios, once with the chat variants (stream management,
 * the archive on SQLite and PostgreSQL) and the archive scenario. Nothing here looks at
 * speed: only that every scenario runs, every message arrives exactly once, stream
 * management counts agree and archive queries return the pages they must. PostgreSQL
 * variants use MEERKAT_TEST_POSTGRES_URL (`off`: left out; nothing listening: skipped).
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { StreamSplitter, childText, rootAttr } from '../../bench/lib/stream.ts';
import { Histogram } from '../../bench/lib/stats.ts';
import { ScramClient, setSaltedPasswordCache } from '../../bench/lib/scram.ts';
import { benchConfig } from '../../bench/lib/meerkat.ts';
import { chatBaseline, chatVariant } from '../../bench/scenarios/chat.ts';
import { redactUrl } from '../../bench/lib/postgres.ts';
import { ScramServer, deriveCredentials } from '../../src/auth/scram.ts';
import { parseConfig } from '../../src/config/load.ts';
import { POSTGRES_URL } from '../support/storage-backends.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

describe('bench stream splitter', () => {
  const stream =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' version='1.0'>" +
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>" +
    "<message from='a@b/c' to='d@e' title=\"x>y\"><body>1:0:5:&lt;tag&gt;</body><x/></message>" +
    "<presence/><!-- note --><iq type='result' id='1'><![CDATA[<not-a-tag>]]></iq></stream:stream>";

  for (const step of [1, 3, 7, stream.length]) {
    it(`reads the same elements when the input arrives ${step} bytes at a time`, () => {
      const seen: string[] = [];
      let header = '';
      let ended = false;
      const splitter = new StreamSplitter({ header: (raw) => { header = raw; }, element: (raw, name) => seen.push(`${name}|${raw}`), end: () => { ended = true; } });
      const bytes = Buffer.from(stream);
      for (let i = 0; i < bytes.length; i += step) splitter.write(bytes.subarray(i, i + step));
      assert.match(header, /^<stream:stream /);
      assert.deepEqual(seen.map((s) => s.split('|')[0]), ['stream:features', 'message', 'presence', 'iq']);
      const message = seen[1].slice('message|'.length);
      assert.equal(rootAttr(message, 'title'), 'x>y');
      assert.equal(rootAttr(message, 'from'), 'a@b/c');
      assert.equal(childText(message, 'body'), '1:0:5:<tag>');
      assert.ok(ended);
    });
  }
});

describe('bench latency histogram', () => {
  it('gives quantiles within 1 % and exact extremes', () => {
    const h = new Histogram();
    for (let i = 1; i <= 10_000; i++) h.record(i / 100); // 0.01 .. 100 ms
    const s = h.summary();
    assert.equal(s.count, 10_000);
    assert.equal(s.min, 0.01);
    assert.equal(s.max, 100);
    assert.ok(Math.abs(s.p50 - 50) / 50 < 0.01, `p50 ${s.p50}`);
    assert.ok(Math.abs(s.p99 - 99) / 99 < 0.01, `p99 ${s.p99}`);
  });
});

describe('bench SCRAM client', () => {
  it("authenticates against the server's SCRAM-SHA-256 and SHA-1, cached or not", async () => {
    const credentials = await deriveCredentials('pässword', 4096);
    for (const cache of [true, false]) {
      setSaltedPasswordCache(cache);
      for (const [mechanism, hash] of [['SCRAM-SHA-256', 'SHA-256'], ['SCRAM-SHA-1', 'SHA-1']] as const) {
        for (let round = 0; round < 2; round++) {
          const server = new ScramServer({ hash, plus: false, domain: 'localhost', channelBindings: [], plusOffered: false, getCredentials: async () => credentials });
          const client = new ScramClient(mechanism, 'alice', 'pässword');
          const first = await server.step(Buffer.from(client.first()));
          assert.equal(first.kind, 'challenge');
          const final = await server.step(Buffer.from(client.final((first as { data: Buffer }).data.toString())));
          assert.equal(final.kind, 'success', JSON.stringify(final));
          assert.ok(client.verify((final as { data: Buffer }).data.toString()));
        }
      }
    }
    setSaltedPasswordCache(true);
  });
});

describe('bench config', () => {
  it('is accepted by the config schema with the intended listeners and limits', () => {
    const config = parseConfig(benchConfig('/tmp/meerkat-bench-x', 'localhost', 15000, 15001), '/tmp/meerkat-bench-x/meerkat.toml');
    assert.deepEqual(config.listen.c2s.map((l) => [l.port, l.address, l.tls.mode, l.rate_limit.bytes_per_second]), [
      [15000, '127.0.0.1', 'none', 0],
      [15001, '127.0.0.1', 'starttls_required', 0],
    ]);
    assert.equal(config.auth.plain_without_tls, true);
  });

  it("accepts a variant's overlay: the archive on, PostgreSQL in its own schema", () => {
    const overlay = { modules: { mam: {} }, storage: { backend: 'postgres', postgres: { url: 'postgres://u:secret@127.0.0.1:5432/test', schema: 'meerkat_bench_0123456789ab' } } };
    const config = parseConfig(benchConfig('/tmp/meerkat-bench-x', 'localhost', 15000, 15001, undefined, overlay), '/tmp/meerkat-bench-x/meerkat.toml');
    assert.equal(config.storage.backend, 'postgres');
    assert.equal(config.storage.postgres.schema, 'meerkat_bench_0123456789ab');
    assert.ok(config.modules.mam !== undefined);
    assert.equal(config.listen.c2s.length, 2);
  });
});

describe('bench chat variants', () => {
  it('parse into transport, stream management and archive, each compared with its transport alone', () => {
    assert.deepEqual(chatVariant('plain'), { tls: false, sm: false, archive: undefined });
    assert.deepEqual(chatVariant('tls+sm+archive-postgres'), { tls: true, sm: true, archive: 'postgres' });
    assert.deepEqual(chatVariant('archive-sqlite'), { tls: false, sm: false, archive: 'sqlite' });
    assert.equal(chatBaseline('plain'), undefined);
    assert.equal(chatBaseline('tls'), undefined);
    assert.equal(chatBaseline('sm'), 'plain');
    assert.equal(chatBaseline('tls+archive-sqlite'), 'tls');
    assert.throws(() => chatVariant('plain+tls'), /more than one transport/);
    assert.throws(() => chatVariant('archive'), /unknown token/);
  });

  it('hide the PostgreSQL password in what they print', () => {
    assert.equal(redactUrl('postgres://meerkat:s3cret@db:5432/x'), 'postgres://meerkat:***@db:5432/x');
    assert.equal(redactUrl('postgres://postgres@127.0.0.1:5432/test'), 'postgres://postgres@127.0.0.1:5432/test');
  });
});

interface BenchLine {
  scenario: string;
  variant: string;
  target: string;
  error?: string;
  [key: string]: unknown;
}

function runBench(args: string[]): Promise<{ code: number | null; lines: BenchLine[]; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.once('exit', (code) => {
      const lines = out.split('\n').filter((l) => l.startsWith('BENCH ')).map((l) => JSON.parse(l.slice(6)) as BenchLine);
      resolve({ code, lines, stderr });
    });
  });
}

describe('npm run bench (tiny)', () => {
  it('runs the login, idle, chat and relay scenarios against a Meerkat it starts, with every message delivered once', async () => {
    const { code, lines, stderr } = await runBench([
      '--no-pin', '--no-restart', '--quiet',
      '-s', 'login,idle,chat,relay',
      '--login-n', '6', '--login-c', '3',
      '--idle-n', '4', '--idle-settle', '0.2', '--idle-variants', 'plain',
      '-p', '2', '-w', '3', '-d', '1', '--warmup', '0', '--drain', '3', '--chat-variants', 'plain',
    ]);
    const results = lines.filter((l) => typeof l.scenario === 'string');
    const errors = results.filter((l) => l.error !== undefined);
    assert.deepEqual(errors, [], stderr);
    assert.equal(code, 0, stderr);
    const find = (scenario: string, variant: string) => results.find((l) => l.scenario === scenario && l.variant === variant);
    for (const variant of ['scram-tls', 'plain']) {
      const login = find('login', variant);
      assert.ok(login, `login/${variant} missing`);
      assert.equal(login.ok, 6);
      assert.equal(login.failures, 0);
    }
    const idle = find('idle', 'plain');
    assert.equal(idle?.open, 4);
    assert.equal(typeof idle?.rssAfterKb, 'number');
    for (const scenario of ['chat', 'relay']) {
      const chat = find(scenario, 'plain');
      assert.ok(chat, `${scenario} missing`);
      assert.ok((chat.received as number) > 0, `${scenario}: nothing delivered`);
      assert.equal(chat.lost, 0, `${scenario}: lost messages`);
      assert.equal(chat.duplicated, 0, `${scenario}: duplicated messages`);
      assert.equal(chat.errors, 0, `${scenario}: error stanzas`);
    }
    assert.ok(find('chat-vs-relay', 'plain'), 'no chat-vs-relay line');
  });

  it('runs the chat variants (stream management, archive per backend) and the archive scenario, every check passing', async () => {
    const postgres = process.env.MEERKAT_TEST_POSTGRES_URL !== 'off';
    const { code, lines, stderr } = await runBench([
      '--no-pin', '--quiet',
      '-s', 'chat,archive',
      '--chat-variants', `plain,sm,archive-sqlite${postgres ? ',archive-postgres' : ''}`,
      '-p', '2', '-w', '3', '-d', '1', '--warmup', '0', '--drain', '3',
      '--archive-variants', `sqlite${postgres ? ',postgres' : ''}`,
      '--archive-messages', '300', '--archive-queries', '5',
      '--postgres-url', POSTGRES_URL,
    ]);
    const results = lines.filter((l) => typeof l.scenario === 'string');
    assert.deepEqual(results.filter((l) => l.error !== undefined), [], stderr);
    assert.equal(code, 0, stderr);
    const find = (scenario: string, variant: string) => results.find((l) => l.scenario === scenario && l.variant === variant);
    // PostgreSQL variants may be skipped when nothing listens at its address, never fail.
    const ran = (scenario: string, variant: string) => {
      const line = find(scenario, variant);
      assert.ok(line, `${scenario}/${variant} missing`);
      if (line.skipped !== undefined) {
        assert.match(String(line.skipped), /not reachable/, `${scenario}/${variant} skipped`);
        assert.ok(variant.includes('postgres'), `${scenario}/${variant} skipped: ${line.skipped}`);
        return undefined;
      }
      return line;
    };
    for (const variant of ['plain', 'sm', 'archive-sqlite', ...(postgres ? ['archive-postgres'] : [])]) {
      const chat = ran('chat', variant);
      if (chat === undefined) continue;
      assert.ok((chat.received as number) > 0, `chat/${variant}: nothing delivered`);
      assert.equal(chat.lost, 0, `chat/${variant}: lost messages`);
      assert.equal(chat.duplicated, 0, `chat/${variant}: duplicated messages`);
      assert.equal(chat.errors, 0, `chat/${variant}: error stanzas`);
      assert.equal(chat.disconnects, 0, `chat/${variant}: disconnects`);
      if (variant.startsWith('archive')) assert.equal(chat.withStanzaId, chat.received, `chat/${variant}: delivered messages without the archive's stanza-id`);
      if (variant !== 'plain') assert.ok(find('chat-cost', variant), `no chat-cost line for ${variant}`);
    }
    const sm = find('chat', 'sm')!;
    assert.ok((sm.smRequests as number) > 0, 'chat/sm: the server never asked for an acknowledgement');
    assert.equal(sm.smMismatches, 0, `chat/sm: ${JSON.stringify(sm.smProblems)}`);
    for (const variant of ['sqlite', ...(postgres ? ['postgres'] : [])]) {
      const archive = ran('archive', variant);
      if (archive === undefined) continue;
      assert.equal(archive.checkFailures, 0, `archive/${variant}: ${JSON.stringify(archive.firstCheckFailures)}`);
      assert.equal(archive.archivedRows, 600);
      assert.equal((archive.lastPageMs as { count: number }).count, 5);
      assert.equal((archive.deepPageMs as { count: number }).count, 5);
      assert.equal((archive.store as Record<string, { count: number }>).lastPage.count, 300);
    }
  });
});
