import { describe, expect, it } from 'vitest';
import { Slots } from '../../../functions/worker/concurrency.ts';

describe('the model slots', () => {
  it('tells its hooks of each acquire, before it waits, and of each release', async () => {
    const told: string[] = [];
    const slots = new Slots(1, {
      acquiring: () => told.push('acquiring'),
      released: () => told.push('released'),
    });
    await slots.acquire();
    const second = slots.acquire();
    expect(told).toEqual(['acquiring', 'acquiring']);
    slots.release();
    await second;
    slots.release();
    expect(told).toEqual(['acquiring', 'acquiring', 'released', 'released']);
  });

  it('hands out at most their capacity, and the next waiter gets a released slot', async () => {
    const slots = new Slots(2);
    await slots.acquire();
    await slots.acquire();
    let third = false;
    const waiting = slots.acquire().then(() => {
      third = true;
    });
    await Promise.resolve();
    expect(third).toBe(false);
    expect(slots.inUse).toBe(2);
    slots.release();
    await waiting;
    expect(third).toBe(true);
    expect(slots.inUse).toBe(2);
  });

  it('shrinks without taking back slots in use: none is handed out until use is under the new capacity', async () => {
    const slots = new Slots(2);
    await slots.acquire();
    await slots.acquire();
    slots.resize(1);
    let next = false;
    const waiting = slots.acquire().then(() => {
      next = true;
    });
    slots.release();
    await Promise.resolve();
    // Two were in use against a capacity of one: the first release only brings use down to it.
    expect(next).toBe(false);
    expect(slots.inUse).toBe(1);
    slots.release();
    await waiting;
    expect(next).toBe(true);
    expect(slots.inUse).toBe(1);
  });

  it('never shrinks below one, and growing wakes waiters at once', async () => {
    const slots = new Slots(1);
    slots.resize(0);
    expect(slots.capacity).toBe(1);
    await slots.acquire();
    let woke = false;
    const waiting = slots.acquire().then(() => {
      woke = true;
    });
    slots.resize(2);
    await waiting;
    expect(woke).toBe(true);
    expect(slots.inUse).toBe(2);
  });

  it('tells of the next release, or gives up waiting after the time given', async () => {
    const slots = new Slots(1);
    await slots.acquire();
    let told = false;
    const watching = slots.nextRelease(10_000).then(() => {
      told = true;
    });
    slots.release();
    await watching;
    expect(told).toBe(true);
    // Nothing is released now: only its timer can end this wait (the test would time out otherwise).
    await expect(slots.nextRelease(20)).resolves.toBeUndefined();
  });
});
