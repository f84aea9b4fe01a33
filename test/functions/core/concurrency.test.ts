import { describe, expect, it } from 'vitest';
import { eachLimit, mapLimit, slices } from '../../../functions/core/concurrency.ts';

const tick = () => new Promise((r) => setTimeout(r, 1));

/** Work that records how many run at once. */
function tracked() {
  const state = { running: 0, most: 0, done: [] as number[] };
  const work = async (n: number) => {
    state.running++;
    state.most = Math.max(state.most, state.running);
    await tick();
    state.running--;
    if (n === 3) throw new Error(`item ${n} failed`);
    state.done.push(n);
    return n * 2;
  };
  return { state, work };
}

describe('bounded concurrency', () => {
  it('maps in order, never more than the limit at once', async () => {
    const { state, work } = tracked();
    expect(await mapLimit([0, 1, 2, 4, 5, 6], 2, work)).toEqual([0, 2, 4, 8, 10, 12]);
    expect(state.most).toBe(2);
  });

  it('works on every item even when one fails, then throws the first failure', async () => {
    const { state, work } = tracked();
    await expect(eachLimit([0, 1, 2, 3, 4, 5, 6, 7], 3, async (n) => void (await work(n)))).rejects.toThrow(
      'item 3 failed',
    );
    expect(state.done.sort()).toEqual([0, 1, 2, 4, 5, 6, 7]);
    expect(state.most).toBe(3);
  });

  it('slices a list into pieces of at most the size', () => {
    expect(slices([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(slices([], 3)).toEqual([]);
  });
});
