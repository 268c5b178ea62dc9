/** Runs `task(i)` for i in 0..count-1 with at most `concurrency` running at once. */
export async function runPool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** Failure counts by reason, for reports. */
export class FailureCounter {
  total = 0;
  readonly byReason: Record<string, number> = {};

  add(err: unknown): void {
    this.total++;
    const reason = typeof err === 'object' && err !== null && 'reason' in err ? String((err as { reason: unknown }).reason) : err instanceof Error ? err.message.slice(0, 60) : String(err);
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
  }
}
