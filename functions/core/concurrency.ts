import pLimit from 'p-limit';

/** Bounded concurrency for work that waits on the network: a page of HEADs, a batch of transactions. */

/** Runs at most `limit` of the functions given to it at once, in the order given (p-limit). */
export const limiter = (limit: number) => pLimit(limit);

/** Maps `items` through `fn`, at most `limit` at a time, keeping their order; fails with the first failure. */
export function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const run = pLimit(limit);
  return Promise.all(items.map((item) => run(() => fn(item))));
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
  const run = pLimit(limit);
  const settled = await Promise.allSettled(items.map((item) => run(() => work(item))));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

/** `items` in slices of `size`. */
export function slices<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A promise resolved from outside, once (`Promise.withResolvers`, which Node 20 lacks). */
export function gate(): { readonly promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
