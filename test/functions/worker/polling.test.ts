import { describe, expect, it } from 'vitest';
import type { Queue, ReceivedMessage } from '../../../functions/adapters/queues.ts';
import { BandedQueue } from '../../../functions/worker/polling.ts';

/** A queue of our own adapter's shape holding bodies in order, that logs every request made to it. */
function band(name: string, log: string[], bodies: string[] = []) {
  const taken = new Map<string, string>();
  const queue = {
    bodies,
    async receive(o: { max: number; waitSeconds: number }): Promise<ReceivedMessage[]> {
      log.push(`${name}:receive:${o.waitSeconds}`);
      return bodies.splice(0, o.max).map((body, i) => {
        const handle = `${name}-${body}-${i}`;
        taken.set(handle, body);
        return { id: handle, body, receiptHandle: handle, receiveCount: 1 };
      });
    },
    async delete(handle: string) {
      log.push(`${name}:delete:${taken.get(handle)}`);
    },
    async setVisibility(handle: string, seconds: number) {
      log.push(`${name}:visibility:${taken.get(handle)}:${seconds}`);
    },
    async send(body: string) {
      log.push(`${name}:send:${body}`);
    },
    async depth() {
      log.push(`${name}:depth`);
      if (bodies[0] === 'uncountable') throw new Error('throttled');
      return { visible: bodies.length, inFlight: 0 };
    },
  };
  return queue as unknown as Queue & { bodies: string[] };
}

describe("a model's priority bands read as one frame queue", () => {
  it('takes the high band first, then the normal band, and the low band only when both above are empty', async () => {
    const log: string[] = [];
    let now = 0;
    const bands = {
      high: band('high', log, ['h1']),
      normal: band('normal', log, ['n1', 'n2']),
      low: band('low', log, ['l1']),
    };
    const queue = new BandedQueue(bands, { recheckMs: 20_000, now: () => now });
    expect((await queue.receive({ max: 2, waitSeconds: 20 })).map((m) => m.body)).toEqual(['h1', 'n1']);
    expect((await queue.receive({ max: 2, waitSeconds: 20 })).map((m) => m.body)).toEqual(['n2', 'l1']);
    now += 1;
    expect(await queue.receive({ max: 2, waitSeconds: 20 })).toEqual([]);
    expect(log).toEqual([
      'high:receive:0',
      'normal:receive:0',
      'high:receive:0',
      'normal:receive:0',
      'low:receive:0',
      // The high band, found empty, is left alone; the two that had work are asked, then one long poll
      // waits on the normal band.
      'normal:receive:0',
      'low:receive:0',
      'normal:receive:20',
    ]);
  });

  it('asks a band found empty again only once per recheck period, so the cost of bands does not grow with frames', async () => {
    const log: string[] = [];
    let now = 0;
    const normal = band(
      'normal',
      log,
      Array.from({ length: 100 }, (_, i) => `n${i}`),
    );
    const queue = new BandedQueue(
      { high: band('high', log), normal, low: band('low', log) },
      { recheckMs: 20_000, now: () => now },
    );
    for (let i = 0; i < 50; i++) {
      await queue.receive({ max: 1, waitSeconds: 20 });
      now += 1000; // one chunk a second
    }
    const empty = log.filter((l) => !l.startsWith('normal'));
    // 50 receives over 50 s: the high band asked at 0, 20 and 40 s; the low band never (normal had work).
    expect(empty).toEqual(['high:receive:0', 'high:receive:0', 'high:receive:0']);
    expect(log.filter((l) => l.startsWith('normal'))).toHaveLength(50);
  });

  it('sends deletes and visibility changes to the band a message came from', async () => {
    const log: string[] = [];
    const queue = new BandedQueue({ high: band('high', log, ['h1']), normal: band('normal', log, ['n1']) });
    const [h, n] = await queue.receive({ max: 2, waitSeconds: 0 });
    expect(h!.receiptHandle.startsWith('high:')).toBe(true);
    await queue.setVisibility(h!.receiptHandle, 0);
    await queue.delete(n!.receiptHandle);
    await queue.send('next window');
    expect(log.slice(2)).toEqual(['high:visibility:h1:0', 'normal:delete:n1', 'normal:send:next window']);
  });

  it('is one long-polled queue when the stack has no bands', async () => {
    const log: string[] = [];
    const queue = new BandedQueue({ normal: band('normal', log) });
    await queue.receive({ max: 4, waitSeconds: 20 });
    expect(log).toEqual(['normal:receive:20']);
  });

  it('counts the bands beside the model set-up, so the first receive asks no band it knows empty', async () => {
    const log: string[] = [];
    let now = 0;
    const queue = new BandedQueue(
      { high: band('high', log), normal: band('normal', log, ['n1', 'n2', 'n3']), low: band('low', log) },
      { recheckMs: 20_000, now: () => now },
    );
    await queue.prime();
    expect((await queue.receive({ max: 2, waitSeconds: 20 })).map((m) => m.body)).toEqual(['n1', 'n2']);
    // Counted empty: each is left alone for the recheck period, then asked as after an empty receive.
    expect(log.splice(0)).toEqual(['high:depth', 'low:depth', 'normal:receive:20']);
    now += 20_000;
    await queue.receive({ max: 2, waitSeconds: 20 });
    expect(log).toEqual(['high:receive:0', 'normal:receive:0', 'low:receive:0']);
  });

  it('asks a band that shows work, or that cannot be counted, on the first receive as before', async () => {
    const log: string[] = [];
    const queue = new BandedQueue({
      high: band('high', log, ['h1']),
      normal: band('normal', log, ['n1']),
      low: band('low', log, ['uncountable']),
    });
    await queue.prime();
    expect((await queue.receive({ max: 3, waitSeconds: 20 })).map((m) => m.body)).toEqual([
      'h1',
      'n1',
      'uncountable',
    ]);
    expect(log.filter((l) => l.endsWith(':depth'))).toEqual(['high:depth', 'low:depth']);
  });
});
