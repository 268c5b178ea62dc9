import type { HookEvents, HookHandler, HookName, HookResult } from '../modules/api.ts';

interface Registered {
  handler: (event: never) => HookResult | Promise<HookResult>;
  priority: number;
}

/**
 * Per-host event bus. Handlers run highest priority first and stop the chain by returning
 * true. Synchronous handlers stay synchronous: a promise is only awaited when a handler
 * returns one, so the common path of a stanza allocates no promises.
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

  /** True when a handler handled the event. Returns a promise only if some handler was async. */
  fire<K extends HookName>(name: K, event: HookEvents[K]): boolean | Promise<boolean> {
    const list = this.handlers.get(name);
    if (list === undefined) return false;
    for (let i = 0; i < list.length; i++) {
      const result = (list[i].handler as HookHandler<K>)(event);
      if (result === true) return true;
      if (result !== undefined && result !== false) return this.continueAsync(list, i, result, event);
    }
    return false;
  }

  private async continueAsync<K extends HookName>(
    list: Registered[],
    index: number,
    pending: Promise<HookResult>,
    event: HookEvents[K],
  ): Promise<boolean> {
    if ((await pending) === true) return true;
    for (let i = index + 1; i < list.length; i++) {
      if ((await (list[i].handler as HookHandler<K>)(event)) === true) return true;
    }
    return false;
  }
}
