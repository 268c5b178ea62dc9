/**
 * The order in which one stream's input is handled. Each element waits until the one before
 * it has finished, with one exception: a message may start as soon as the message before it
 * only waits for storage writes to commit (it reached its DeliveryGate), up to PIPELINE_DEPTH
 * messages in flight. One client's messages then share archive transactions instead of
 * waiting for a commit each, and are still decided and delivered in the order they were sent
 * (RFC 6120 §10.1). Anything but a message waits until no message is in flight, so an <a/>
 * answering <r/> counts only finished stanzas.
 *
 * While work waits, reading from the peer pauses once QUEUE_PAUSE_AT elements are queued, and
 * resumes when the queue is down to QUEUE_RESUME_AT.
 */
import type { DeliveryGate } from '../router/hooks.ts';
import type { XmlElement } from '../xml/element.ts';

/** An element from the peer, or a step that must run in order with them (completing a resumption). */
export type Work = XmlElement | (() => void);

export interface SequencedStream {
  /** Handles an element or runs a step; a promise means it has not finished. */
  run(work: Work): void | Promise<void>;
  /** Whether `work` is a message that may overlap the messages before it. */
  pipelinable(work: Work): work is XmlElement;
  /** Handles such a message, passing `gate` on to the router. */
  runMessage(message: XmlElement, gate: DeliveryGate): void | Promise<void>;
  /** A handler threw or rejected. */
  failed(err: unknown): void;
  /** The stream is closed: nothing more runs. */
  readonly closed: boolean;
  pauseReading(): void;
  resumeReading(): void;
}

const QUEUE_PAUSE_AT = 64;
const QUEUE_RESUME_AT = 16;
const PIPELINE_DEPTH = 32;

export class InputSequencer {
  private readonly stream: SequencedStream;
  private readonly queue: Work[] = [];
  /** Something other than a pipelined message is running: nothing else starts. */
  private busy = false;
  /** Messages running side by side, and the completion of the newest and all before it. */
  private inFlight = 0;
  private lastMessage: Promise<void> | undefined;
  /** The gate of the newest message while it has not reached it: the next one waits. */
  private opening: DeliveryGate | undefined;

  constructor(stream: SequencedStream) {
    this.stream = stream;
  }

  push(work: Work): void {
    if (this.stream.closed) return;
    if (this.queue.length > 0 || !this.mayStart(work)) {
      this.queue.push(work);
      if (this.queue.length >= QUEUE_PAUSE_AT) this.stream.pauseReading();
      return;
    }
    this.start(work);
  }

  /** Takes everything that has not started yet out of the queue. */
  takeQueued(): Work[] {
    return this.queue.splice(0);
  }

  /** Reading resumes unless the queue is still long. */
  resumeReadingIfShort(): void {
    if (this.queue.length <= QUEUE_RESUME_AT && !this.stream.closed) this.stream.resumeReading();
  }

  private mayStart(work: Work): boolean {
    if (this.busy || this.opening !== undefined) return false;
    return this.inFlight === 0 || (this.inFlight < PIPELINE_DEPTH && this.stream.pipelinable(work));
  }

  private start(work: Work): void {
    if (this.stream.pipelinable(work)) return this.startMessage(work);
    let result: void | Promise<void>;
    try {
      result = this.stream.run(work);
    } catch (err) {
      this.stream.failed(err);
      return;
    }
    if (!(result instanceof Promise)) return;
    this.busy = true;
    void result.catch((err: unknown) => this.stream.failed(err)).then(() => {
      this.busy = false;
      this.drain();
    });
  }

  private startMessage(message: XmlElement): void {
    const previous = this.lastMessage;
    let reached = false;
    const gate: DeliveryGate = {
      previous,
      reached: () => {
        if (reached) return;
        reached = true;
        if (this.opening === gate) {
          this.opening = undefined;
          this.drain();
        }
      },
    };
    let result: void | Promise<void>;
    try {
      result = this.stream.runMessage(message, gate);
    } catch (err) {
      this.stream.failed(err);
      return;
    }
    if (!(result instanceof Promise)) return;
    const done = result.catch((err: unknown) => this.stream.failed(err));
    this.inFlight++;
    // A message refused before its gate finishes without waiting for the earlier ones: the
    // next one must still wait for all of them.
    this.lastMessage = previous === undefined ? done : done.then(() => previous);
    if (!reached) this.opening = gate;
    void done.then(() => {
      if (--this.inFlight === 0) this.lastMessage = undefined;
      gate.reached();
      this.drain();
    });
  }

  private drain(): void {
    while (this.queue.length > 0 && !this.stream.closed && this.mayStart(this.queue[0])) this.start(this.queue.shift()!);
    this.resumeReadingIfShort();
  }
}
