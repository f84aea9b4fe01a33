import type { ReceivedMessage } from '../functions/adapters/queues.ts';
import { frameSeed } from '../functions/core/frames.ts';
import { parseFrameQueueMessage } from '../functions/core/messages.ts';
import { withProvenance } from '../functions/core/png.ts';
import { frameInput, type Worker } from '../functions/worker/worker.ts';

/**
 * The naive sequential worker the benchmark measures the real one against (bench-only, never shipped):
 * receive one message; for each of its frames in turn start it, generate it, upload it and record it;
 * then delete the message. Nothing overlaps, so the model idles during every table, bucket and queue
 * request. It borrows the real worker's store, model client and record steps, so both make the same
 * requests per frame and differ only in the overlap.
 */
export async function runBaseline(worker: Worker, until: () => boolean): Promise<{ modelMs: number }> {
  const { queue, store, model } = worker.deps;
  let modelMs = 0;
  await model.waitUntilReady(60_000);
  while (!until()) {
    const [message] = await queue.receive({ max: 1, waitSeconds: 1, visibilitySeconds: 300 });
    if (!message) continue;
    modelMs += await handle(worker, message);
    await queue.delete(message.receiptHandle);
  }
  return { modelMs };

  async function handle(w: Worker, message: ReceivedMessage): Promise<number> {
    const parsed = parseFrameQueueMessage(message.body);
    if (!parsed.ok || parsed.message.kind !== 'chunk') throw new Error('the baseline reads chunks only');
    const chunk = parsed.message;
    const job = await w.jobOf(chunk.jobId, chunk.tenant);
    if (job?.status !== 'running') return 0;
    let busy = 0;
    for (const frame of chunk.frames) {
      const seed = frameSeed(job.seed, job.seedMode, frame, job.frames.start);
      const start = await store.startFrame(job, frame, seed);
      if (!start.started) continue;
      const began = performance.now();
      const prediction = await model.predict(
        `${job.id}-${frame}-${start.attempts}`,
        model.inputFor(frameInput(job, frame, seed), job.params),
      );
      busy += performance.now() - began;
      const png = withProvenance(prediction.png, w.provenance(job, frame, seed));
      await w.recordSuccess(job, frame, seed, start.attempts, png, prediction.predictTime);
    }
    await w.afterWork(job.id);
    return busy;
  }
}
