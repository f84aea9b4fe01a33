/** The worker's small concurrency tools: the model's slots, and waiting (bounded work: core/concurrency.ts). */

/**
 * A counting semaphore: the model's prediction slots. Its capacity can shrink when the model turns out to
 * have fewer slots than configured (a 409 confirmed by the health check): slots in use beyond it are not
 * taken back, but no new one is handed out until use is under it.
 */
export class Slots {
  private inUseCount = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly releaseWatchers = new Set<() => void>();
  /** `acquiring` and `released` are told, in the caller's own async context, of each acquire and release. */
  constructor(
    private capacityCount: number,
    private readonly hooks: { acquiring?(): void; released?(): void } = {},
  ) {}

  get capacity(): number {
    return this.capacityCount;
  }
  get inUse(): number {
    return this.inUseCount;
  }

  async acquire(): Promise<void> {
    this.hooks.acquiring?.();
    if (this.inUseCount < this.capacityCount) {
      this.inUseCount++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    this.hooks.released?.();
    this.inUseCount--;
    for (const watch of this.releaseWatchers) watch();
    this.releaseWatchers.clear();
    if (this.inUseCount < this.capacityCount) {
      const next = this.waiters.shift();
      if (next) {
        this.inUseCount++;
        next();
      }
    }
  }

  /** Sets the capacity (at least 1). */
  resize(capacity: number): void {
    this.capacityCount = Math.max(1, capacity);
    while (this.inUseCount < this.capacityCount && this.waiters.length > 0) {
      this.inUseCount++;
      this.waiters.shift()?.();
    }
  }

  /** Resolves at the next release, or after `maxMs`. */
  nextRelease(maxMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.releaseWatchers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, maxMs);
      this.releaseWatchers.add(done);
    });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
