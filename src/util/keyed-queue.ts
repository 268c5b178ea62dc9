/**
 * One queue of tasks per key, run one at a time in arrival order: for work on one account
 * that must neither interleave nor overtake (roster read-modify-writes, offline storage),
 * while different accounts proceed in parallel.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  /** True while tasks for `key` are queued or running. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  /** Run `task` after every task queued for `key` before it; a failed task does not stop the queue. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    // Even the first task starts a microtask later, after its tail is registered, so a task
    // that queues another for the same key never runs beside it.
    const result = (this.tails.get(key) ?? Promise.resolve()).then(task);
    const tail = result.then(() => undefined, () => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves when the tasks queued for `key` so far have finished. */
  drained(key: string): Promise<void> {
    return this.tails.get(key) ?? Promise.resolve();
  }
}
