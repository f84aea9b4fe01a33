import { performance } from 'node:perf_hooks';
import { createWorker } from '../functions/worker/create.ts';
import { startLocalStack } from '../local/stack.ts';

/**
 * `npm run bench`: figures of the local system on this machine, printed for the record.
 *
 *  1. POST /v1/jobs latency for a 1-frame and a 10,000-frame shot (the API never fans out inline).
 *  2. Fan-out: time until every chunk of a 10,000-frame shot is on the frame queue.
 *  3. Worker throughput with the reference model at 1024x576: frames per second, and how busy the
 *     model was (model time / wall time / slots), the figure a GPU fleet is sized on.
 *  4. Windows: a 200-frame shot of 256x144 on `reference-window` (49 frames a prediction, overlap 8),
 *     chained and in parallel: frames and windows per second, and how busy the model was.
 *  5. Peak resident memory of the process (API, fan-out, worker and model share it in local mode).
 */

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};
const ms = (n: number) => `${n.toFixed(1)} ms`;
let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50);

const stack = await startLocalStack({ withoutWorker: true, withoutWebhooks: true });
const headers = { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' };
const post = async (frames: number, shot: string) => {
  const t = performance.now();
  const res = await fetch(`${stack.url}/v1/jobs`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ shot, prompt: 'bench', frames: { start: 1, end: frames } }),
  });
  const elapsed = performance.now() - t;
  if (res.status !== 202) throw new Error(`POST answered ${res.status}`);
  return { elapsed, id: ((await res.json()) as { id: string }).id };
};

try {
  // Warm the handlers (first call pays module and client set-up, as a Lambda cold start would).
  await stack.app.store.cancelJob((await post(1, 'WARM')).id);
  const rounds = 30;
  const one: number[] = [];
  const many: number[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const [frames, into] of [
      [1, one],
      [10_000, many],
    ] as const) {
      const { elapsed, id } = await post(frames, `LAT_${frames}`);
      into.push(elapsed);
      await stack.app.store.cancelJob(id);
    }
  }
  console.log('POST /v1/jobs latency (local, sequential, %d each)', rounds);
  console.log(`  1 frame        p50 ${ms(quantile(one, 0.5))}  p95 ${ms(quantile(one, 0.95))}`);
  console.log(`  10,000 frames  p50 ${ms(quantile(many, 0.5))}  p95 ${ms(quantile(many, 0.95))}`);

  // Fan-out of a 10,000-frame shot into chunk messages.
  const drain = async () => {
    for (;;) {
      const { visible, inFlight } = await stack.app.frameQueue.depth();
      if (visible + inFlight === 0) return;
      const got = await stack.app.frameQueue.receive({ max: 10, waitSeconds: 0 });
      await Promise.all(got.map((m) => stack.app.frameQueue.delete(m.receiptHandle)));
    }
  };
  await drain();
  const t0 = performance.now();
  const big = await post(10_000, 'FANOUT');
  for (;;) {
    const job = await stack.app.store.getJob(big.id);
    if (job?.plannedUpTo === 10_001) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const fanout = performance.now() - t0;
  const { visible } = await stack.app.frameQueue.depth();
  console.log(
    `fan-out of 10,000 frames: ${ms(fanout)} (${visible} chunk messages, ${(10_000 / (fanout / 1000)).toFixed(0)} frames/s)`,
  );
  await stack.app.store.cancelJob(big.id);
  await drain();

  // Worker throughput on the reference model (CPU), at the default 1024x576.
  const frames = 48;
  const worker = createWorker(stack.app, process.env, { waitSeconds: 1, retryBaseMs: 10 });
  const running = worker.run();
  const t1 = performance.now();
  const res = await fetch(`${stack.url}/v1/jobs`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      shot: 'THROUGHPUT',
      prompt: 'a building collapses, dust, dusk',
      frames: { start: 1001, end: 1000 + frames },
    }),
  });
  const { id } = (await res.json()) as { id: string };
  for (;;) {
    const job = await stack.app.store.getJob(id);
    if (job && ['succeeded', 'failed'].includes(job.status)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const wall = performance.now() - t1;
  worker.stop();
  await running;
  const slots = Number(process.env.FRAMECAST_WORKER_CONCURRENCY ?? 2);
  console.log(
    `worker: ${frames} frames of 1024x576 in ${ms(wall)} = ${(frames / (wall / 1000)).toFixed(2)} frames/s`,
  );
  console.log(
    `  model busy ${((worker.stats.modelBusyMs / wall / slots) * 100).toFixed(0)}% of ${slots} worker slot(s) (waits on a busy model count as busy)`,
  );

  // Windows: one prediction makes 49 frames; chained windows wait for each other, parallel ones do not.
  for (const windowMode of ['chained', 'parallel'] as const) {
    const shotFrames = 200;
    const windowed = createWorker(stack.app, process.env, { waitSeconds: 1, retryBaseMs: 10 });
    const run = windowed.run();
    const t = performance.now();
    const created = await fetch(`${stack.url}/v1/jobs`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        shot: `WINDOWS_${windowMode.toUpperCase()}`,
        prompt: 'a building collapses, dust, dusk',
        model: 'reference-window',
        windowMode,
        width: 256,
        height: 144,
        frames: { start: 1001, end: 1000 + shotFrames },
      }),
    });
    const job = (await created.json()) as { id: string; window: { count: number } };
    for (;;) {
      const got = await stack.app.store.getJob(job.id);
      if (got && ['succeeded', 'failed'].includes(got.status)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const took = performance.now() - t;
    windowed.stop();
    await run;
    console.log(
      `windows, ${windowMode}: ${shotFrames} frames of 256x144 in ${job.window.count} windows of 49 (overlap 8) in ${ms(took)} = ${(shotFrames / (took / 1000)).toFixed(1)} frames/s, ${(job.window.count / (took / 1000)).toFixed(2)} windows/s`,
    );
    console.log(
      `  model busy ${((windowed.stats.modelBusyMs / took / slots) * 100).toFixed(0)}% of ${slots} worker slot(s)${windowMode === 'chained' ? ' (a chain keeps one slot busy at a time)' : ''}`,
    );
  }
  console.log(
    `peak RSS of the whole local system: ${(peakRss / 1024 / 1024).toFixed(0)} MB (DynamoDB Local's JVM not included)`,
  );
} finally {
  clearInterval(sampler);
  await stack.stop();
}
