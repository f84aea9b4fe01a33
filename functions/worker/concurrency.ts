/** The worker's small concurrency tools: the model's slots, bounded parallel work, and waiting. */

/** A counting semaphore: the model's slots. */
export class Slots {
  private free: number;
  private readonly waiters: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * Runs `work` for every item, at most `limit` at a time, in order of start. Every item is worked on even
 * when one fails (a frame that cannot be stored does not stop the others being recorded); the first
 * failure is thrown once all have settled.
 */
export async function eachLimit<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failed) throw failed.error;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
