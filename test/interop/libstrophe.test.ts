/**
 * A C client nobody here wrote: libstrophe (Debian's libstrophe 0.12, the library behind the
 * Profanity client, which .ci/run installs) resumes its XEP-0198 session after its TCP
 * connection is cut again and again while messages flow both ways.
 *
 * libstrophe_resume.c is built here. Alice connects through a TCP proxy in this process, bob
 * directly; whenever the program prints "cut", the proxy cuts alice's connection: either both
 * sides are reset, or only alice's side, leaving the server's side open and silent (a
 * connection the server cannot yet know is dead, which the resumption must close).
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../support/index.ts';

const SOURCE = fileURLToPath(new URL('./libstrophe_resume.c', import.meta.url));
/** Both accounts', as the program takes one. */
const PASSWORD = 'libstrophe-secret';

const flags = spawnSync('pkg-config', ['--cflags', '--libs', 'libstrophe'], { encoding: 'utf8' });
// .ci/run installs it; on a developer machine without it this test says so and is skipped.
const missing = flags.status !== 0 || spawnSync('cc', ['--version']).status !== 0
  ? 'needs libstrophe-dev, pkg-config and a C compiler (apt-get install libstrophe-dev pkg-config gcc)'
  : false;

/** A proxy to one port whose connections can be cut. */
class CuttableProxy {
  private readonly server = net.createServer((client) => this.accept(client));
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();

  constructor(private readonly target: number) {}

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
  }

  /** Resets the client's side of every connection, and the server's side too unless `silent`. */
  cut(silent: boolean): void {
    for (const pair of this.pairs) {
      pair.client.unpipe(pair.upstream);
      pair.upstream.unpipe(pair.client);
      pair.client.resetAndDestroy();
      // A silent upstream stays open, reading and dropping what the server writes.
      if (silent) pair.upstream.on('data', () => undefined);
      else pair.upstream.resetAndDestroy();
      this.pairs.delete(pair);
    }
  }

  close(): void {
    this.cut(false);
    this.server.close();
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      if (!this.pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  }
}

describe('libstrophe 0.12 (C, used by Profanity)', { skip: missing }, () => {
  let server: TestServer;
  let dir: string;
  let program: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'meerkat-libstrophe-'));
    program = path.join(dir, 'libstrophe_resume');
    const build = spawnSync('cc', ['-Wall', '-O1', '-o', program, SOURCE, ...flags.stdout.trim().split(/\s+/)], { encoding: 'utf8' });
    assert.equal(build.status, 0, `building ${SOURCE} failed:\n${build.stderr}`);
    // At info level: the test reads when the server closed a connection a resumption replaced.
    server = await startTestServer({ toml: '[general]\nloglevel = "info"\n[stream_management]\nenabled = true\nresume_timeout = 60\n' });
    await server.addUser('alice', PASSWORD);
    await server.addUser('bob', PASSWORD);
  });

  after(async () => {
    await server?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('resumes after each of six cuts while 600 messages go each way: every message exactly once', { timeout: 90_000 }, async () => {
    const proxy = new CuttableProxy(server.port('starttls'));
    const proxyPort = await proxy.listen();
    const cuts = 6;
    const child = spawn(program, [
      'alice@localhost', 'bob@localhost', PASSWORD, String(proxyPort), String(server.port('starttls')), '600', String(cuts),
    ]);
    let log = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      log = (log + chunk).slice(-200_000);
    });
    let result: Record<string, number> | undefined;
    let cutsMade = 0;
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line === 'cut') {
        // Alternately: both sides reset, and only alice's (the server's side left open).
        proxy.cut(cutsMade++ % 2 === 1);
      } else if (line.startsWith('result ')) {
        result = Object.fromEntries(line.slice(7).split(' ').map((pair) => {
          const [key, value] = pair.split('=');
          return [key, Number(value)];
        }));
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    proxy.close();
    const context = () => `${JSON.stringify(result)}\nlast of libstrophe's log:\n${log.slice(-4000)}`;
    assert.equal(code, 0, `exit ${code}: ${context()}`);
    assert.ok(result !== undefined, `no result line: ${context()}`);
    assert.equal(cutsMade, cuts);
    for (const name of ['alice', 'bob']) {
      assert.equal(result[`${name}_sent`], 600, `${name} sent everything: ${context()}`);
      assert.equal(result[`${name}_missing`], 0, `${name} missed messages: ${context()}`);
      assert.equal(result[`${name}_duplicated`], 0, `${name} got messages twice: ${context()}`);
      assert.equal(result[`${name}_unexpected`], 0, context());
      assert.equal(result[`${name}_errors`], 0, `${name} got error replies: ${context()}`);
      assert.equal(result[`${name}_enabled`], 1, `${name} enabled stream management once, never again: ${context()}`);
    }
    assert.equal(result.alice_resumed, cuts, `alice resumed after every cut: ${context()}`);
    assert.equal(result.alice_disconnects, cuts, context());
    // The server closed each connection that a resumption replaced while it still looked open:
    // at least the silent ones (a reset one too, if the server had not yet seen its reset).
    const replaced = server.logs.filter((line) => line.includes('session resumed on a new connection: closing the old one')).length;
    assert.ok(replaced >= cuts / 2, `each silent cut was replaced by the resumption: ${replaced}`);
  });
});
