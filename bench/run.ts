import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { createClients } from '../functions/adapters/clients.ts';
import type { JobStore } from '../functions/adapters/store/jobs.ts';
import { isTerminalJob } from '../functions/core/state.ts';
import { startReferenceModel } from '../functions/model/reference/server.ts';
import { Container } from '../functions/services/container.ts';
import { ENV } from '../functions/shared/env.ts';
import { CogClient } from '../functions/worker/cog.ts';
import { createWorker } from '../functions/worker/create.ts';
import type { Worker } from '../functions/worker/worker.ts';
import { startModelProcess } from '../local/model-process.ts';
import { startLocalStack } from '../local/stack.ts';
import { runBaseline } from './baseline.ts';
import { bundles } from './bundles.ts';
import { PRICES } from './prices.ts';
import { startReplayModel } from './replay-model.ts';
import { awsPolling, type Counted, RequestCounter } from './requests.ts';
import { FLAT_MB_PER_1000_FRAMES, rssTrend } from './rss-trend.ts';

/**
 * `npm run bench [-- --json FILE] [-- --only NAMES]`: figures of the local system on this machine, each beside its target
 * where it has one (docs/performance.md says how each is measured and what bounds it).
 *
 *  1. POST /v1/jobs latency for a 1-frame and a 10,000-frame shot, 100 each (the API never fans out inline).
 *  2. Fan-out: time until every chunk of a 10,000-frame shot is on the frame queue.
 *  3. Pipeline efficiency: a 300-frame shot of 64x64 on one worker slot against a one-slot reference model
 *     taking 100 ms a prediction (`renderDelayMs`): the model's own time over the makespan, for the real
 *     worker and for a naive sequential one (./baseline.ts). The real worker's run is also the cost shot:
 *     every AWS request of it is counted by operation and priced (./prices.ts).
 *  4. First-frame overhead: submit to first frame recorded, minus the model's time, on the same setup.
 *  5. Windows: a 200-frame shot of 256x144 on `reference-window` (49 frames a prediction, overlap 8),
 *     chained and in parallel, on the same one-slot model: frames and windows per second, efficiency.
 *  6. Worker throughput with the reference model at 1024x576 (2 slots), and the process's peak RSS.
 *  7. Bundle size of each Lambda handler (esbuild, as the CDK bundles them) and its import time.
 *
 * `--only submit,pipeline` runs those parts alone (names in SECTIONS); without it, every part runs.
 */

const argAfter = (flag: string) => {
  const i = process.argv.indexOf(flag);
  if (i < 0) return undefined;
  const value = process.argv[i + 1];
  if (!value || value.startsWith('--')) throw new Error(`${flag} needs a value`);
  return value;
};
const jsonFile = argAfter('--json');
/**
 * s3rver and the SQS emulator run in a process of their own unless `--emulators-in-process` says
 * otherwise: S3 and SQS do not take a request on the worker's event loop in production either.
 */
const emulatorsInProcess = process.argv.includes('--emulators-in-process');

/** The parts of the bench, by the name `--only` takes, in the order they run. */
const SECTIONS = [
  'submit',
  'fanout',
  'pipeline',
  'first-frame',
  'refusals',
  'windows',
  'throughput',
  'memory',
  'bundles',
] as const;
type Section = (typeof SECTIONS)[number];
const only = argAfter('--only')
  ?.split(',')
  .map((name) => name.trim())
  .filter(Boolean);
const unknown = only?.filter((name) => !(SECTIONS as readonly string[]).includes(name)) ?? [];
if (unknown.length > 0) {
  throw new Error(`--only: unknown part(s) ${unknown.join(', ')}; the parts are ${SECTIONS.join(', ')}`);
}
const runs = (section: Section) => !only || only.includes(section);

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? Number.NaN;
};
const ms = (n: number) => `${n.toFixed(1)} ms`;
const sleep = (n: number) => new Promise((r) => setTimeout(r, n));
let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 50);

const counter = new RequestCounter();
// The webhook consumer runs: its requests for the shot's events are part of a frame's cost. The fair-share
// window is wide enough that the fan-out figure is the fan-out's own rate over a whole 10,000-frame shot
// (by default a shot is released 40 chunks at a time as its frames finish; docs/operations.md); every
// other shot here fits in one default window, so nothing else changes.
const stack = await startLocalStack({
  withoutWorker: true,
  emulatorsInOwnProcess: !emulatorsInProcess,
  onAwsRequest: counter.observe,
  env: { [ENV.fairShareChunks]: '10000' },
});
// The bench's own reads (polling for a job's end, cleaning up) go through clients that are not counted.
const observer = new Container(process.env, () => createClients());
const headers = { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' };
const submit = async (body: Record<string, unknown>) => {
  const t = performance.now();
  const res = await fetch(`${stack.url}/v1/jobs`, { method: 'POST', headers, body: JSON.stringify(body) });
  const elapsed = performance.now() - t;
  if (res.status !== 202) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
  return { elapsed, ...((await res.json()) as { id: string; window?: { count: number } }) };
};
const post = (frames: number, shot: string) =>
  submit({ shot, prompt: 'bench', frames: { start: 1, end: frames } });
const ended = async (id: string, every = 20) => {
  for (;;) {
    const job = await observer.store.getJob(id);
    if (job && ['succeeded', 'failed', 'canceled'].includes(job.status)) return job;
    await sleep(every);
  }
};
/**
 * When worker `w` ends job `id`: the moment the job's end (its terminal move, after the manifest) returns
 * in the worker. A makespan taken from it does not include the bench's poll for the end, nor does that poll
 * need to be frequent, taking CPU from the system it measures.
 */
const endOf = (w: Worker, id: string): Promise<number> =>
  new Promise((resolve) => {
    const store = w.deps.store;
    const watched: JobStore = Object.create(store);
    watched.finalizeIfDone = async (...args) => {
      const out = await store.finalizeIfDone(...args);
      if (args[0] === id && out && isTerminalJob(out.job.status)) resolve(performance.now());
      return out;
    };
    (w.deps as { store: JobStore }).store = watched;
  });
const planned = async (id: string, upTo: number) => {
  for (;;) {
    if ((await observer.store.getJob(id))?.plannedUpTo === upTo) return;
    await sleep(10);
  }
};
const drain = async () => {
  for (;;) {
    const { visible, inFlight } = await observer.frameQueue.depth();
    if (visible + inFlight === 0) return;
    const got = await observer.frameQueue.receive({ max: 10, waitSeconds: 0 });
    await Promise.all(got.map((m) => observer.frameQueue.delete(m.receiptHandle)));
  }
};

/** A figure of the table and, under its key, of the JSON. */
interface Figure {
  key?: string;
  label: string;
  value: number | undefined;
  unit?: string;
  target?: string;
  met?: boolean;
  note?: string;
}
const figures: Figure[] = [];
const json: Record<string, unknown> = {};
const record = (f: Figure) => {
  figures.push(f);
  if (f.key && f.value !== undefined) json[f.key] = Number(f.value.toFixed(6));
};

try {
  // 1. Accept latency. Warm the handlers first (module and client set-up, as a Lambda cold start).
  await observer.store.cancelJob((await post(1, 'WARM')).id);
  if (runs('submit')) {
    const rounds = 100;
    const one: number[] = [];
    const many: number[] = [];
    for (let i = 0; i < rounds; i++) {
      for (const [frames, into] of [
        [1, one],
        [10_000, many],
      ] as const) {
        const { elapsed, id } = await post(frames, `LAT_${frames}`);
        into.push(elapsed);
        await observer.store.cancelJob(id);
      }
    }
    console.log('POST /v1/jobs latency (local, sequential, %d each)', rounds);
    console.log(
      `  1 frame        p50 ${ms(quantile(one, 0.5))}  p95 ${ms(quantile(one, 0.95))}  p99 ${ms(quantile(one, 0.99))}`,
    );
    console.log(
      `  10,000 frames  p50 ${ms(quantile(many, 0.5))}  p95 ${ms(quantile(many, 0.95))}  p99 ${ms(quantile(many, 0.99))}`,
    );
    const p99One = quantile(one, 0.99);
    const p99Many = quantile(many, 0.99);
    record({ key: 'submitP99Ms1', label: 'submit p99, 1 frame', value: p99One, unit: 'ms' });
    record({
      key: 'submitP99Ms10000',
      label: 'submit p99, 10,000 frames',
      value: p99Many,
      unit: 'ms',
      target: '<= 2x the 1-frame p99',
      met: p99Many <= 2 * p99One,
    });
  }

  // 2. Fan-out of a 10,000-frame shot into chunk messages.
  if (runs('fanout')) {
    await drain();
    const t0 = performance.now();
    const big = await post(10_000, 'FANOUT');
    await planned(big.id, 10_001);
    const fanout = performance.now() - t0;
    const { visible } = await observer.frameQueue.depth();
    const fanoutRate = 10_000 / (fanout / 1000);
    console.log(
      `fan-out of 10,000 frames: ${ms(fanout)} (${visible} chunk messages, ${fanoutRate.toFixed(0)} frames/s)`,
    );
    record({
      key: 'fanoutFramesPerSec',
      label: 'fan-out, 10,000 frames',
      value: fanoutRate,
      unit: 'frames/s',
    });
    await observer.store.cancelJob(big.id);
    await drain();
  }

  // 3. Pipeline efficiency: one worker slot against a one-slot model at a fixed 100 ms a prediction.
  // Parts 3 to 5 share that model.
  const model = ['pipeline', 'first-frame', 'refusals', 'windows'].some((name) => runs(name as Section))
    ? emulatorsInProcess
      ? await startReferenceModel({ port: 0, concurrency: 1, renderDelayMs: 100 })
      : await startModelProcess({ concurrency: 1, renderDelayMs: 100 })
    : undefined;
  // Set up before any worker is timed: the figures are the worker's, not the model's start.
  if (model) await new CogClient({ url: model.url }).waitUntilReady(60_000);
  const onModel = { ...process.env, ...(model && { [ENV.modelUrl]: model.url }) };
  const slotWorker = () =>
    createWorker(stack.app, onModel, { concurrency: 1, waitSeconds: 1, retryBaseMs: 10 });
  const shotFrames = 300;
  /** Submits a shot, waits until it is all on the frame queue, then times the worker from its start. */
  const efficiencyRun = async (shot: string, run: (w: Worker, done: () => boolean) => Promise<unknown>) => {
    await drain();
    counter.reset();
    const { id } = await submit({
      shot,
      prompt: 'bench',
      width: 64,
      height: 64,
      frames: { start: 1001, end: 1000 + shotFrames },
    });
    await planned(id, 1001 + shotFrames);
    const worker = slotWorker();
    // Every prediction's span as the worker sees it: the model's idle time between one answer and the
    // next request is what the worker costs it (the model's own overhead is inside each span). A request
    // pipelined behind another is sent before that one's answer: no wait. `slots`: each prediction's
    // time of the slot (Prediction.slotMs), queueing behind the one before excluded.
    const spans: [number, number][] = [];
    const slots: number[] = [];
    const predict = worker.deps.model.predict.bind(worker.deps.model);
    worker.deps.model.predict = async (...args: Parameters<typeof predict>) => {
      const began = performance.now();
      try {
        const out = await predict(...args);
        slots.push(out.slotMs);
        return out;
      } finally {
        spans.push([began, performance.now()]);
      }
    };
    let done = false;
    const endedAt = endOf(worker, id);
    const t = performance.now();
    const running = run(worker, () => done);
    // A worker that fails ends the bench rather than leaving it waiting for the job.
    const job = await Promise.race([ended(id, 50), running.then(() => new Promise<never>(() => undefined))]);
    const makespan = (await endedAt) - t;
    done = true;
    worker.stop();
    await running;
    const counted = counter.reset();
    const frames = await observer.store.listFrames(id, 1001, 1000 + shotFrames, true);
    const modelMs = frames.reduce((n, f) => n + (f.predictTime ?? 0) * 1000, 0);
    if (job.succeeded !== shotFrames) throw new Error(`${shot}: ${job.succeeded} of ${shotFrames} frames`);
    spans.sort((a, b) => a[0] - b[0]);
    const waits = spans.slice(1).map(([began], i) => Math.max(0, began - spans[i]![1]));
    const slotMs = slots.reduce((n, ms) => n + ms, 0);
    return {
      makespan,
      modelMs,
      efficiency: modelMs / makespan,
      counted,
      // The model's wait between predictions, per frame, and a prediction's time at the worker.
      waitPerFrame: waits.reduce((n, w) => n + w, 0) / shotFrames,
      slotMs: slotMs / slots.length,
      beforeFirst: (spans[0]?.[0] ?? t) - t,
    };
  };
  if (runs('pipeline')) {
    const baseline = await efficiencyRun('BASELINE', (w, done) => runBaseline(w, done));
    const real = await efficiencyRun('PIPELINE', (w) => w.run());
    for (const [name, r] of [
      ['naive sequential worker', baseline],
      ['worker', real],
    ] as const) {
      console.log(
        `${name}: ${shotFrames} frames of 64x64, 1 slot, model 100 ms: model ${ms(r.modelMs)} of ${ms(r.makespan)} = ${(r.efficiency * 100).toFixed(1)}% busy, ${r.counted.total} AWS requests`,
      );
    }
    record({
      key: 'pipelineEfficiency',
      label: 'pipeline efficiency (300 frames, 1 slot, 100 ms)',
      value: real.efficiency,
      target: '>= 0.97 and > baseline',
      met: real.efficiency >= 0.97 && real.efficiency > baseline.efficiency,
    });
    record({
      key: 'baselineEfficiency',
      label: 'naive sequential worker, same run',
      value: baseline.efficiency,
    });
    console.log(
      `  the model's wait between predictions: ${ms(real.waitPerFrame)} a frame (naive: ${ms(baseline.waitPerFrame)}); a prediction has the slot ${ms(real.slotMs)} at the worker against ${ms(real.modelMs / shotFrames)} of predict_time; ${ms(real.beforeFirst)} from the worker's start to its first request`,
    );
    record({
      key: 'modelWaitMsPerFrame',
      label: "model's wait between predictions, per frame",
      value: real.waitPerFrame,
      unit: 'ms',
    });
    record({
      key: 'predictionSlotMs',
      label: "a prediction's time of the slot at the worker (model time 100 ms + its server)",
      value: real.slotMs,
      unit: 'ms',
    });

    // The cost shot: every request of the real worker's run, from the POST to the job's end.
    // Empty receives are polling: local mode's 1 s polls are replaced by the long polls AWS would make.
    const localPolling = real.counted.emptyReceives;
    const polling = awsPolling(real.makespan / 1000);
    const counted: Counted = real.counted.withoutPolling();
    const planMessages = messagesTo(counted, stack.queues.plan.url);
    const eventMessages = messagesTo(counted, stack.queues.event.url);
    const lambda = {
      // The POST, one fan-out invocation per plan message, one webhook invocation per event message (an
      // upper bound: the event source batches up to 10).
      invocations: 1 + planMessages + eventMessages,
      assumedMsEach: 100,
      memoryMb: 1024,
    };
    const cost = counted.cost(lambda, polling);
    const perFrame = (counted.total + polling) / shotFrames;
    json.requestsByOperation = {
      ...counted.byOperation(),
      'SQS.ReceiveMessage(empty, AWS estimate)': polling,
    };
    json.emptyReceivesLocal = localPolling;
    const per1000 = (cost.total / shotFrames) * 1000;
    record({
      key: 'requestsPerFrame',
      label: 'AWS requests per frame (300-frame shot)',
      value: perFrame,
      target: '<= 3',
      met: perFrame <= 3,
    });
    record({
      key: 'costPer1000Frames',
      label: `non-GPU AWS cost of 1,000 frames (${PRICES.region}, prices of ${PRICES.checked})`,
      value: per1000,
      unit: '$',
      target: '<= 0.01',
      met: per1000 <= 0.01,
    });
    json.costPer1000FramesByService = Object.fromEntries(
      Object.entries(cost).map(([k, v]) => [k, Number(((v / shotFrames) * 1000).toFixed(6))]),
    );
    console.log(`requests of the ${shotFrames}-frame shot, by operation (per frame):`);
    for (const [op, n] of Object.entries(json.requestsByOperation as Record<string, number>)) {
      console.log(`  ${op.padEnd(40)} ${String(n).padStart(6)}  ${(n / shotFrames).toFixed(3)}`);
    }
    console.log(
      `  (local mode's own empty receives, left out: ${localPolling}; the AWS estimate above replaces them)`,
    );
    console.log(
      `  cost of 1,000 frames: ${Object.entries(cost)
        .map(([k, v]) => `${k} $${((v / shotFrames) * 1000).toFixed(5)}`)
        .join(
          ', ',
        )} (Lambda: ${lambda.invocations} invocations, ${lambda.assumedMsEach} ms at ${lambda.memoryMb} MB assumed)`,
    );
  }

  // 4. First-frame overhead: submit to first frame recorded, minus the model's own time.
  if (runs('first-frame')) {
    const worker = slotWorker();
    const running = worker.run();
    await sleep(200);
    const overheads: number[] = [];
    for (let i = 0; i < 5; i++) {
      const submitted = Date.now();
      const { id } = await submit({
        shot: 'FIRST',
        prompt: 'bench',
        width: 64,
        height: 64,
        frames: { start: 1, end: 1 },
      });
      await ended(id, 10);
      const [frame] = await observer.store.listFrames(id, 1, 1, true);
      if (!frame?.finishedAt) throw new Error('the first frame has no record');
      overheads.push(Date.parse(frame.finishedAt) - submitted - (frame.predictTime ?? 0) * 1000);
    }
    worker.stop();
    await running;
    const median = quantile(overheads, 0.5);
    console.log(
      `first frame: submit to recorded minus model time, 5 runs: median ${ms(median)}, max ${ms(Math.max(...overheads))}`,
    );
    record({
      key: 'firstFrameOverheadMs',
      label: 'first-frame overhead (median of 5)',
      value: median,
      unit: 'ms',
      target: '<= 100',
      met: median <= 100,
    });
  }

  // 4b. A worker set for two slots against a one-slot model: it learns the model's slots from the first
  // refusal (confirmed by the health check) instead of being refused again and again.
  if (runs('refusals')) {
    await drain();
    const worker = createWorker(stack.app, onModel, { concurrency: 2, waitSeconds: 1, retryBaseMs: 10 });
    const running = worker.run();
    const { id } = await submit({
      shot: 'SLOTS',
      prompt: 'bench',
      width: 64,
      height: 64,
      frames: { start: 1, end: 40 },
    });
    await ended(id, 20);
    worker.stop();
    await running;
    console.log(
      `a worker set for 2 slots on a 1-slot model, 40 frames: ${worker.stats.modelRefusals} prediction(s) refused with 409, ${worker.slots.capacity} slot(s) in use after`,
    );
    record({
      key: 'modelRefusals',
      label: '409s, worker set for 2 slots on a 1-slot model (40 frames)',
      value: worker.stats.modelRefusals,
      target: 'rare',
    });
  }

  // 5. Windows: one prediction makes 49 frames; chained windows wait for each other, parallel ones do not.
  if (runs('windows')) {
    const windowed: Record<string, number> = {};
    // Measured as the pipeline is: the shot is on the frame queue before the worker starts, and the
    // makespan runs from the worker's start to the job's end.
    for (const windowMode of ['chained', 'parallel'] as const) {
      const frames = shotFrames;
      await drain();
      const job = await submit({
        shot: `WINDOWS_${windowMode.toUpperCase()}`,
        prompt: 'a building collapses, dust, dusk',
        model: 'reference-window',
        windowMode,
        width: 256,
        height: 144,
        frames: { start: 1001, end: 1000 + frames },
      });
      await planned(job.id, 1001 + frames);
      const worker = slotWorker();
      // Every window's prediction as the worker sees it, from the worker's start: where the time goes.
      const spans: [number, number][] = [];
      const predictFiles = worker.deps.model.predictFiles.bind(worker.deps.model);
      worker.deps.model.predictFiles = async (...args: Parameters<typeof predictFiles>) => {
        const began = performance.now() - t;
        try {
          return await predictFiles(...args);
        } finally {
          spans.push([began, performance.now() - t]);
        }
      };
      const endedAt = endOf(worker, job.id);
      const t = performance.now();
      const run = worker.run();
      await ended(job.id, 50);
      const took = (await endedAt) - t;
      spans.sort((a, b) => a[0] - b[0]);
      const gaps = spans.slice(1).map(([began], i) => Math.max(0, began - spans[i]![1]));
      worker.stop();
      await run;
      const count = job.window?.count ?? 0;
      windowed[windowMode] = worker.stats.modelBusyMs / took;
      console.log(
        `windows, ${windowMode}: ${frames} frames of 256x144 in ${count} windows of 49 (overlap 8) in ${ms(took)} = ${(frames / (took / 1000)).toFixed(1)} frames/s, ${(count / (took / 1000)).toFixed(2)} windows/s`,
      );
      console.log(
        `  model busy ${(windowed[windowMode] * 100).toFixed(0)}% of 1 slot (100 ms a prediction): first prediction ${ms(spans[0]?.[0] ?? 0)} after the worker's start, ${gaps.length} gaps between windows of ${gaps.map((g) => g.toFixed(0)).join(', ')} ms, the job's end ${ms(took - (spans.at(-1)?.[1] ?? 0))} after the last`,
      );
    }
    json.windowedEfficiency = {
      chained: Number(windowed.chained!.toFixed(4)),
      parallel: Number(windowed.parallel!.toFixed(4)),
    };
    figures.push(
      {
        label: `windowed efficiency, chained (${shotFrames} frames, 1 slot)`,
        value: windowed.chained,
        target: '>= 0.97',
        met: windowed.chained! >= 0.97,
      },
      {
        label: 'windowed efficiency, parallel',
        value: windowed.parallel,
        target: '>= 0.97',
        met: windowed.parallel! >= 0.97,
      },
    );
  }
  await model?.close();

  // 6. Worker throughput on the reference model (CPU), at the default 1024x576.
  if (runs('throughput')) {
    const frames = 48;
    await drain();
    const rssBefore = peakRss;
    peakRss = 0;
    const worker = createWorker(stack.app, process.env, { waitSeconds: 1, retryBaseMs: 10 });
    const running = worker.run();
    const t1 = performance.now();
    const { id } = await submit({
      shot: 'THROUGHPUT',
      prompt: 'a building collapses, dust, dusk',
      frames: { start: 1001, end: 1000 + frames },
    });
    await ended(id, 50);
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
    peakRss = Math.max(peakRss, rssBefore);
  }

  // 6b. The worker's memory, in a process of its own (functions/worker/main.ts, as the container runs
  // it), its RSS sampled from outside: 3,000 frames of 1024x576, then 4K frames in a fresh process, then a
  // window of 49 4K frames (streamed) in another. The
  // frames come from a replay model (./replay-model.ts: a reference frame, answered at once), so the
  // figures are the worker's, at the worker's own pace.
  if (runs('memory')) {
    const reference = await startReferenceModel({ port: 0, concurrency: 1 });
    const cog = new CogClient({ url: reference.url });
    await cog.waitUntilReady(60_000);
    const frameOf = async (width: number, height: number) =>
      (
        await cog.predict(`bench-${width}`, {
          prompt: 'a building collapses, dust, dusk',
          seed: 7,
          shot_seed: 7,
          width,
          height,
          frame: 1001,
          job_id: 'job_BENCH',
          shot: 'MEMORY',
        })
      ).png;
    const hd = await frameOf(1024, 576);
    const uhd = await frameOf(4096, 2160);
    await reference.close();

    /** A shot of `frames` copies of `png` on a fresh worker process; `model` one with windows, else frame by frame. */
    const memoryRun = async (
      png: Uint8Array,
      width: number,
      height: number,
      frames: number,
      model?: 'reference-window',
    ) => {
      await drain();
      const replay = await startReplayModel(png);
      const worker = await workerProcess(replay.url);
      try {
        const baseline = worker.rss();
        let peak = baseline;
        const byFrames: [number, number][] = [];
        const sampling = setInterval(() => {
          peak = Math.max(peak, worker.rss());
        }, 10);
        const { id } = await submit({
          shot: `MEMORY_${width}${model ? '_WINDOW' : ''}`,
          prompt: 'bench',
          ...(model && { model }),
          width,
          height,
          frames: { start: 1001, end: 1000 + frames },
        });
        for (;;) {
          const job = await observer.store.getJob(id);
          byFrames.push([job?.succeeded ?? 0, worker.rss()]);
          if (job && ['succeeded', 'failed', 'canceled'].includes(job.status)) {
            if (job.succeeded !== frames) throw new Error(`memory run: ${job.succeeded} of ${frames} frames`);
            break;
          }
          await sleep(100);
        }
        clearInterval(sampling);
        return { baseline, peak, byFrames };
      } finally {
        worker.kill();
        await replay.close();
      }
    };

    // Long enough for a leak of a few KB a frame to stand out of the garbage collector's sawtooth.
    const hdFrames = 3000;
    const warmUpFrames = 300;
    const hdRun = await memoryRun(hd, 1024, 576, hdFrames);
    const mb = (n: number) => n / 1024 / 1024;
    // Flat: the RSS once 100 frames are done against the most after that.
    const after100 = hdRun.byFrames.find(([f]) => f >= 100)?.[1] ?? hdRun.baseline;
    const mostAfter = Math.max(...hdRun.byFrames.filter(([f]) => f >= 100).map(([, r]) => r));
    console.log(
      `worker process, ${hdFrames.toLocaleString('en')} frames of 1024x576 (${(hd.byteLength / 1024).toFixed(0)} KB each): RSS ${mb(hdRun.baseline).toFixed(0)} MB idle, ${mb(after100).toFixed(0)} MB after 100 frames, at most ${mb(mostAfter).toFixed(0)} MB after that; peak ${mb(hdRun.peak).toFixed(0)} MB`,
    );
    record({
      key: 'workerPeakRssMb',
      label: `worker process peak RSS, ${hdFrames.toLocaleString('en')} frames of 1024x576`,
      value: mb(hdRun.peak),
      unit: 'MB',
    });
    // The RSS as the frames went by: flat once the heap has grown to its working size.
    const at = (n: number) => hdRun.byFrames.find(([f]) => f >= n)?.[1] ?? 0;
    const steps = [100, 250, 500, 750, 1000, 2000, 3000];
    console.log(`  RSS by frames done: ${steps.map((n) => `${n}: ${mb(at(n)).toFixed(0)} MB`).join(', ')}`);
    json.workerRssMb = {
      idle: Number(mb(hdRun.baseline).toFixed(1)),
      ...Object.fromEntries(steps.map((n) => [`after${n}Frames`, Number(mb(at(n)).toFixed(1))])),
      mostAfter100Frames: Number(mb(mostAfter).toFixed(1)),
    };
    figures.push({
      label: 'worker RSS, most after frame 100 over RSS at frame 100 (workerRssMb)',
      value: mb(mostAfter - after100),
      unit: 'MB',
      target: 'see the slope below',
    });
    // Flat or not: the slope of the RSS against frames done, after the warm-up.
    const trend = rssTrend(hdRun.byFrames, warmUpFrames);
    if (!trend) throw new Error('memory run: too few samples for a trend');
    console.log(
      `  RSS trend after frame ${warmUpFrames}: ${trend.mbPer1000Frames.toFixed(2)} MB per 1,000 frames over ${trend.frames} frames (${trend.samples} samples): ${trend.flat ? 'flat' : 'NOT flat'} (flat: at most ${FLAT_MB_PER_1000_FRAMES})`,
    );
    record({
      key: 'workerRssSlopeMbPer1000Frames',
      label: `worker RSS slope after frame ${warmUpFrames}, least squares`,
      value: trend.mbPer1000Frames,
      unit: 'MB/1,000 frames',
      target: `<= ${FLAT_MB_PER_1000_FRAMES} (flat)`,
      met: trend.flat,
    });

    const uhdFrames = 8;
    const uhdRun = await memoryRun(uhd, 4096, 2160, uhdFrames);
    const held = uhdRun.peak - uhdRun.baseline;
    console.log(
      `worker process, ${uhdFrames} frames of 4096x2160 (${mb(uhd.byteLength).toFixed(1)} MB each as PNG): RSS ${mb(uhdRun.baseline).toFixed(0)} MB idle, peak ${mb(uhdRun.peak).toFixed(0)} MB: ${mb(held).toFixed(0)} MB held at most = ${(held / uhd.byteLength).toFixed(2)}x a frame`,
    );
    json.frame4k = {
      frameMb: Number(mb(uhd.byteLength).toFixed(2)),
      idleRssMb: Number(mb(uhdRun.baseline).toFixed(1)),
      peakRssMb: Number(mb(uhdRun.peak).toFixed(1)),
      peakHeldMb: Number(mb(held).toFixed(1)),
      peakHeldPerFrameSize: Number((held / uhd.byteLength).toFixed(2)),
    };
    figures.push({
      label: `4096x2160 frames: peak RSS over idle, in frame sizes (frame4k; ${mb(uhd.byteLength).toFixed(1)} MB PNG)`,
      value: held / uhd.byteLength,
      target: 'see docs/performance.md, "Memory"',
    });

    // One window of 49 such frames (reference-window's size, one prediction), which the worker streams
    // (over windowInMemoryMaxBytes): the replay model answers it with 49 copies of the frame as data URLs.
    const windowFrames = 49;
    const windowRun = await memoryRun(uhd, 4096, 2160, windowFrames, 'reference-window');
    const windowHeld = windowRun.peak - windowRun.baseline;
    console.log(
      `worker process, a window of ${windowFrames} frames of 4096x2160, streamed: RSS ${mb(windowRun.baseline).toFixed(0)} MB idle, peak ${mb(windowRun.peak).toFixed(0)} MB: ${mb(windowHeld).toFixed(0)} MB held at most = ${(windowHeld / uhd.byteLength).toFixed(2)}x a frame (the window whole: ${mb(windowFrames * uhd.byteLength).toFixed(0)} MB)`,
    );
    json.frame4k = {
      ...(json.frame4k as Record<string, number>),
      window: {
        frames: windowFrames,
        idleRssMb: Number(mb(windowRun.baseline).toFixed(1)),
        peakRssMb: Number(mb(windowRun.peak).toFixed(1)),
        peakHeldMb: Number(mb(windowHeld).toFixed(1)),
        peakHeldPerFrameSize: Number((windowHeld / uhd.byteLength).toFixed(2)),
      },
    };
    figures.push({
      label: `a 49-frame window of 4096x2160, streamed: peak RSS over idle, in frame sizes (frame4k.window)`,
      value: windowHeld / uhd.byteLength,
      target: 'uploadConcurrency + 1 frames and their copies, not the window',
    });
  }

  // 7. Bundle sizes of the Lambda handlers, and the time to import each in a fresh process.
  if (runs('bundles')) {
    const built = await bundles(process.env);
    const entries = Object.entries(built);
    json.bundleKb = Object.fromEntries(entries.map(([k, b]) => [k, Number(b.kb.toFixed(1))]));
    json.coldImportMs = Object.fromEntries(entries.map(([k, b]) => [k, Number(b.importMs.toFixed(1))]));
    console.log('Lambda bundles (esbuild, minified ESM, AWS SDK bundled), and import time in a new process:');
    for (const [entry, b] of entries) {
      console.log(`  ${entry.padEnd(40)} ${b.kb.toFixed(0).padStart(5)} KB  ${ms(b.importMs)}`);
    }
    figures.push(
      {
        label: 'largest handler bundle (bundleKb)',
        value: Math.max(...entries.map(([, b]) => b.kb)),
        unit: 'KB',
      },
      {
        label: 'slowest handler import, new process (coldImportMs)',
        value: Math.max(...entries.map(([, b]) => b.importMs)),
        unit: 'ms',
      },
    );
  }

  console.log(
    `peak RSS of the whole local system: ${(peakRss / 1024 / 1024).toFixed(0)} MB (DynamoDB Local's JVM not included)`,
  );

  console.log('\nfigure | value | target | met?');
  console.log('---|---|---|---');
  for (const f of figures) {
    const value =
      f.value === undefined
        ? '-'
        : `${f.unit === '$' ? '$' : ''}${f.value.toFixed(f.unit === '$' ? 5 : f.value < 10 ? 3 : 1)}${f.unit && f.unit !== '$' ? ` ${f.unit}` : ''}`;
    const met = f.met === undefined ? (f.note ?? '') : f.met ? 'yes' : 'NO';
    console.log(`${f.label}${f.key ? ` (${f.key})` : ''} | ${value} | ${f.target ?? ''} | ${met}`);
  }
  if (jsonFile) {
    await writeFile(
      jsonFile,
      `${JSON.stringify({ measuredAt: new Date().toISOString(), ...json }, null, 2)}\n`,
    );
    console.log(`\nwrote ${jsonFile}`);
  }
} finally {
  clearInterval(sampler);
  await stack.stop();
}

/**
 * The worker as the container runs it (functions/worker/main.ts), in a process of its own with the local
 * stack's environment, on `modelUrl`; its RSS read from /proc (Linux). Resolves once it polls.
 */
async function workerProcess(modelUrl: string) {
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '--import', 'tsx', 'functions/worker/main.ts'],
    {
      env: { ...process.env, [ENV.modelUrl]: modelUrl, [ENV.modelImage]: 'replay of a reference frame' },
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('the worker process did not start');
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stdout.on('data', (d: Buffer) => {
      if (seen.length < 1e6) seen += d.toString();
      if (seen.includes('worker starting')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the worker process exited (${code})`)));
  });
  // Past its start: its model check and first long poll.
  await sleep(1500);
  return {
    rss: () => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : 0;
      } catch {
        return 0;
      }
    },
    kill: () => {
      child.kill('SIGKILL');
    },
  };
}

/** Messages sent to one queue (each SendMessage, each entry of a SendMessageBatch). */
function messagesTo(counted: Counted, queueUrl: string): number {
  let n = 0;
  for (const r of counted.requests) {
    if (r.service !== 'SQS') continue;
    const input = r.input as { QueueUrl?: string; Entries?: unknown[] };
    if (input.QueueUrl !== queueUrl) continue;
    if (r.operation === 'SendMessage') n++;
    else if (r.operation === 'SendMessageBatch') n += input.Entries?.length ?? 0;
  }
  return n;
}
