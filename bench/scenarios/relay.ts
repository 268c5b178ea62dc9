/**
 * relay: the chat load (same pairs, window, duration and message format) through
 * bench/relay/server.ts, a byte-forwarding relay pinned where the server would be (core 0).
 * No XMPP is spoken, so this is the most the generator can push on this machine: the
 * reference ceiling. The report gives each target's chat throughput as a fraction of it.
 */
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chatRows, runChatLoad, type ChatPeer } from '../lib/chat-load.ts';
import { runPool } from '../lib/pool.ts';
import { spawnPinned, terminate } from '../lib/proc.ts';
import { StreamSplitter } from '../lib/stream.ts';
import { fmt, type Scenario } from '../lib/scenario.ts';

const RELAY = fileURLToPath(new URL('../relay/server.ts', import.meta.url));

class RawPeer implements ChatPeer {
  readonly address: string;
  private readonly socket: net.Socket;
  private out = '';
  private scheduled = false;
  private handler: (raw: string, name: string) => void = () => undefined;
  private readonly splitter = new StreamSplitter(
    { header: () => undefined, element: (raw, name) => this.handler(raw, name), end: () => undefined },
    { headerless: true },
  );

  private constructor(socket: net.Socket, address: string) {
    this.socket = socket;
    this.address = address;
  }

  static connect(port: number, pair: number, side: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.setNoDelay(true);
      socket.once('error', reject);
      socket.once('connect', () => socket.write(`PAIR ${pair}\n`));
      const peer = new RawPeer(socket, `${side}${pair}@relay`);
      let greeting = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        greeting = Buffer.concat([greeting, chunk]);
        const nl = greeting.indexOf(10);
        if (nl === -1) return;
        socket.off('data', onData);
        socket.on('data', (data: Buffer) => peer.splitter.write(data));
        if (nl + 1 < greeting.length) peer.splitter.write(greeting.subarray(nl + 1));
        resolve(peer);
      };
      socket.on('data', onData);
    });
  }

  send(data: string): void {
    this.out += data;
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => {
        this.scheduled = false;
        const chunk = this.out;
        this.out = '';
        this.socket.write(chunk);
      });
    }
  }

  listen(handler: (raw: string, name: string) => void): void {
    this.handler = handler;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const scenario: Scenario = {
  name: 'relay',
  description: 'the chat load through a byte relay: the generator ceiling',
  variants: () => ['plain'],
  accounts: () => 0,
  targetIndependent: true,
  async run(ctx) {
    const { options } = ctx;
    const relay = spawnPinned(options.pin ? 0 : undefined, process.execPath, ['--import', 'tsx', RELAY, '0'], {
      cwd: path.dirname(RELAY),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        relay.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const m = /listening (\d+)/.exec(out);
          if (m !== null) resolve(Number(m[1]));
        });
        relay.once('exit', () => reject(new Error('relay exited')));
      });
      const peers: RawPeer[] = new Array(2 * options.pairs);
      // Both sides of a pair connect together: the relay answers only once both are there.
      await runPool(options.pairs, options.idleC, async (p) => {
        [peers[2 * p], peers[2 * p + 1]] = await Promise.all([RawPeer.connect(port, p, 'a'), RawPeer.connect(port, p, 'b')]);
      });
      const pairs = [];
      for (let p = 0; p < options.pairs; p++) pairs.push({ a: peers[2 * p], b: peers[2 * p + 1] });
      const figures = await runChatLoad(pairs, {
        window: options.window,
        durationS: options.duration,
        warmupS: options.warmup,
        bodyBytes: options.bodyBytes,
        drainS: options.drain,
        serverPid: relay.pid,
        log: ctx.log,
      });
      for (const peer of peers) peer.destroy();
      return { ...figures };
    } finally {
      await terminate(relay);
    }
  },
  rows: (f) => chatRows(f),
  headline(f) {
    const l = f.latencyMs as Record<string, number>;
    return { 'msgs/s': fmt(f.msgsPerSec), 'p50 ms': fmt(l.p50, 2), 'p99 ms': fmt(l.p99, 2) };
  },
};

export default scenario;
