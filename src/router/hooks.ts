import type { HookEvents, HookHandler, HookName, HookResult } from '../modules/api.ts';

interface Registered {
  handler: (event: never) => HookResult | Promise<HookResult>;
  priority: number;
}

/**
 * How a stream lets one client's messages overlap without reordering them. `reached` is
 * called when the message's chain gets to its first handler of negative priority (or never,
 * if it ends before): everything before has run, so the stream may start the next message.
 * `previous` (the earlier messages' completion) is awaited before that handler.
 */
export interface DeliveryGate {
  readonly previous: Promise<void> | undefined;
  reached(): void;
}

/**
 * Per-host event bus. Handlers run highest priority first and stop the chain by returning
 * true. Synchronous handlers stay synchronous: a promise is only awaited when a handler
 * returns one, so the common path of a stanza allocates no promises.
 *
 * Priorities say what a handler does: zero and above inspect, refuse or start storing
 * (blocking, archiving); below zero wait for what was started and deliver (archive commit,
 * carbons, default delivery, offline storage). With a DeliveryGate the part above zero of
 * one client's messages runs in the order they were sent, one message after another, and so
 * does the part below zero, while the storage writes they start overlap in between.
 */
export class HookBus {
  private readonly handlers = new Map<HookName, Registered[]>();

  on<K extends HookName>(name: K, handler: HookHandler<K>, priority = 0): void {
    const list = this.handlers.get(name) ?? [];
    list.push({ handler: handler as Registered['handler'], priority });
    // Stable sort: equal priorities keep registration order.
    list.sort((a, b) => b.priority - a.priority);
    this.handlers.set(name, list);
  }

  /** True when a handler handled the event. Returns a promise only if some handler (or the gate) was async. */
  fire<K extends HookName>(name: K, event: HookEvents[K], gate?: DeliveryGate): boolean | Promise<boolean> {
    const list = this.handlers.get(name);
    if (list === undefined) return false;
    for (let i = 0; i < list.length; i++) {
      if (gate !== undefined && list[i].priority < 0) {
        gate.reached();
        const previous = gate.previous;
        gate = undefined;
        if (previous !== undefined) return this.continueAsync(list, i, previous, event, undefined);
      }
      const result = (list[i].handler as HookHandler<K>)(event);
      if (result === true) return true;
      if (result !== undefined && result !== false) return this.continueAsync(list, i + 1, result, event, gate);
    }
    return false;
  }

  /** Settles `pending`, then runs the handlers from `next` on (passing the gate as `fire` does). */
  private async continueAsync<K extends HookName>(
    list: Registered[],
    next: number,
    pending: Promise<HookResult>,
    event: HookEvents[K],
    gate: DeliveryGate | undefined,
  ): Promise<boolean> {
    if ((await pending) === true) return true;
    for (let i = next; i < list.length; i++) {
      if (gate !== undefined && list[i].priority < 0) {
        gate.reached();
        await gate.previous;
        gate = undefined;
      }
      if ((await (list[i].handler as HookHandler<K>)(event)) === true) return true;
    }
    return false;
  }
}
