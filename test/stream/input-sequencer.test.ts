/**
 * The order a stream handles its input in: one element after another, except messages, which
 * overlap once the one before has reached its delivery gate, at most 32 at a time; each
 * message's gate opens only after every earlier message finished; reading pauses and resumes
 * with the queue. (The end-to-end order and archive tests are in test/modules/mam-order.)
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { DeliveryGate } from '../../src/router/hooks.ts';
import { el, type XmlElement } from '../../src/xml/element.ts';
import { InputSequencer, type SequencedStream, type Work } from '../../src/stream/input-sequencer.ts';

interface Pending {
  finish(): void;
  fail(err: unknown): void;
}

/** A stream whose handlers report what started and finish when the test says so. */
class Recorder implements SequencedStream {
  readonly log: string[] = [];
  readonly pending = new Map<string, Pending>();
  readonly gates = new Map<string, DeliveryGate>();
  readonly failures: unknown[] = [];
  closed = false;
  paused = false;
  /** Messages whose handling reaches the gate at once (the usual case: nothing async before it). */
  reachAtOnce = true;

  run(work: Work): void | Promise<void> {
    if (typeof work === 'function') return work();
    return this.started(name(work));
  }

  pipelinable(work: Work): work is XmlElement {
    return typeof work !== 'function' && work.name === 'message';
  }

  runMessage(message: XmlElement, gate: DeliveryGate): void | Promise<void> {
    const id = name(message);
    this.gates.set(id, gate);
    if (this.reachAtOnce) gate.reached();
    return this.started(id);
  }

  failed(err: unknown): void {
    this.failures.push(err);
  }

  pauseReading(): void {
    this.paused = true;
  }

  resumeReading(): void {
    this.paused = false;
  }

  private started(id: string): Promise<void> {
    this.log.push(id);
    return new Promise<void>((resolve, reject) => this.pending.set(id, { finish: resolve, fail: reject }));
  }

  async finish(id: string): Promise<void> {
    this.pending.get(id)!.finish();
    await settle();
  }
}

const name = (element: XmlElement) => `${element.name}:${element.attrs.id}`;
const message = (id: string | number) => el('message', { id: String(id) });
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('the order a stream handles its input in', () => {
  it('runs anything but messages one at a time, in arrival order', async () => {
    const stream = new Recorder();
    const input = new InputSequencer(stream);
    input.push(el('iq', { id: '1' }));
    input.push(el('presence', { id: '2' }));
    input.push(el('iq', { id: '3' }));
    assert.deepEqual(stream.log, ['iq:1']);
    await stream.finish('iq:1');
    assert.deepEqual(stream.log, ['iq:1', 'presence:2']);
    await stream.finish('presence:2');
    assert.deepEqual(stream.log, ['iq:1', 'presence:2', 'iq:3']);
  });

  it('starts up to 32 messages side by side, the next as soon as one finishes', async () => {
    const stream = new Recorder();
    const input = new InputSequencer(stream);
    for (let n = 1; n <= 40; n++) input.push(message(n));
    assert.equal(stream.log.length, 32);
    await stream.finish('message:1');
    assert.equal(stream.log.length, 33);
    assert.equal(stream.log.at(-1), 'message:33');
  });

  it('starts no message while the one before has not reached its gate', async () => {
    const stream = new Recorder();
    stream.reachAtOnce = false;
    const input = new InputSequencer(stream);
    input.push(message(1));
    input.push(message(2));
    assert.deepEqual(stream.log, ['message:1']);
    stream.gates.get('message:1')!.reached();
    assert.deepEqual(stream.log, ['message:1', 'message:2']);
  });

  it('holds anything but a message until every message in flight has finished', async () => {
    const stream = new Recorder();
    const input = new InputSequencer(stream);
    input.push(message(1));
    input.push(message(2));
    input.push(el('r', { id: 'ack' }));
    input.push(message(3));
    assert.deepEqual(stream.log, ['message:1', 'message:2']);
    await stream.finish('message:2');
    assert.deepEqual(stream.log, ['message:1', 'message:2'], 'message 1 is still in flight');
    await stream.finish('message:1');
    assert.deepEqual(stream.log, ['message:1', 'message:2', 'r:ack']);
    await stream.finish('r:ack');
    assert.deepEqual(stream.log, ['message:1', 'message:2', 'r:ack', 'message:3']);
  });

  it('opens a message\'s gate only after every earlier message finished, in whatever order they did', async () => {
    const stream = new Recorder();
    const input = new InputSequencer(stream);
    for (let n = 1; n <= 3; n++) input.push(message(n));
    assert.equal(stream.gates.get('message:1')!.previous, undefined);
    let thirdMayDeliver = false;
    void stream.gates.get('message:3')!.previous!.then(() => { thirdMayDeliver = true; });
    // The second finishes first (refused before delivery, say): the third still waits for the first.
    await stream.finish('message:2');
    assert.equal(thirdMayDeliver, false);
    await stream.finish('message:1');
    assert.equal(thirdMayDeliver, true);
  });

  it('pauses reading with 64 elements queued and resumes when 16 are left', async () => {
    const stream = new Recorder();
    const input = new InputSequencer(stream);
    input.push(el('iq', { id: 'slow' }));
    for (let n = 1; n <= 63; n++) input.push(el('iq', { id: String(n) }));
    assert.equal(stream.paused, false);
    input.push(el('iq', { id: '64' }));
    assert.equal(stream.paused, true);
    await stream.finish('iq:slow');
    for (let n = 1; n <= 46; n++) await stream.finish(`iq:${n}`);
    assert.equal(stream.paused, true, '17 still queued');
    await stream.finish('iq:47');
    assert.equal(stream.paused, false);
  });

  it('reports a handler that throws or rejects and goes on with the rest', async () => {
    const stream = new Recorder();
    const input = new InputSequencer(stream);
    input.push(() => { throw new Error('step failed'); });
    input.push(message(1));
    input.push(el('iq', { id: 'next' }));
    stream.pending.get('message:1')!.fail(new Error('delivery failed'));
    await settle();
    assert.deepEqual(stream.failures.map((err) => (err as Error).message), ['step failed', 'delivery failed']);
    assert.deepEqual(stream.log, ['message:1', 'iq:next']);
  });

  it('runs nothing once the stream is closed, and hands back what had not started', async () => {
    const stream = new Recorder();
    const input = new InputSequencer(stream);
    input.push(el('iq', { id: '1' }));
    input.push(el('iq', { id: '2' }));
    assert.deepEqual(input.takeQueued().map((work) => name(work as XmlElement)), ['iq:2']);
    stream.closed = true;
    input.push(el('iq', { id: '3' }));
    await stream.finish('iq:1');
    assert.deepEqual(stream.log, ['iq:1']);
  });
});
