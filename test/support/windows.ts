import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect } from 'vitest';
import { decodeRgb } from '../../functions/core/png.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import type { WindowSpec } from '../../functions/core/windows.ts';
import { type ReferenceModel, startReferenceModel } from '../../functions/model/reference/server.ts';
import { createWorker } from '../../functions/worker/create.ts';
import type { Worker, WorkerSettings } from '../../functions/worker/worker.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from './api.ts';

/**
 * What the window tests share (test/integration/windows*.test.ts, test/faults/windows.test.ts): a local stack without a worker of its
 * own (each test runs workers against the model it needs), more reference models, the shot, and readers
 * of what a job stored. A test file calls `useWindowsStack()` once, at its top.
 */

export let stack: LocalStack;
export let api: ReturnType<typeof client>;
export const models: ReferenceModel[] = [];

/** Starts the stack before the file's tests and stops it, and the models they started, after them. */
export function useWindowsStack(): void {
  beforeAll(async () => {
    stack = await startLocalStack({ withoutWorker: true });
    api = client(stack.url, stack.apiKey);
  });
  afterAll(async () => {
    await Promise.all(models.map((m) => m.close()));
    await stack?.stop();
  });
}

export const VIDEO: WindowSpec = { window: 49, overlap: 8, lengths: { multiple: 4, offset: 1 } };
export const SHOT = { start: 1, end: 200 };
export const W = 64;
export const H = 64;

/** Another reference model server: video output, a slower one, one with injected failures. */
export async function model(options: Parameters<typeof startReferenceModel>[0]): Promise<ReferenceModel> {
  const m = await startReferenceModel({ port: 0, concurrency: 2, ...options });
  models.push(m);
  return m;
}

/** Runs a worker on `modelUrl` (the stack's model by default) while `during` runs. */
export async function withWorker<T>(
  during: (worker: Worker) => Promise<T>,
  modelUrl = stack.modelUrl,
  settings: Partial<WorkerSettings> = {},
): Promise<T> {
  const worker = createWorker(
    stack.app,
    { ...process.env, FRAMECAST_MODEL_URL: modelUrl },
    { waitSeconds: 1, retryBaseMs: 10, ...settings },
  );
  const running = worker.run();
  try {
    return await during(worker);
  } finally {
    worker.stop();
    await running;
  }
}

export const windowedShot = (shot: string, extra: Record<string, unknown> = {}) => ({
  shot,
  prompt: 'a building collapses in slow motion, dust and debris at dusk',
  model: 'reference-window',
  frames: SHOT,
  seed: 1234,
  width: W,
  height: H,
  ...extra,
});

export async function makeShot(body: Record<string, unknown>, modelUrl?: string): Promise<JobResponse> {
  const created = await api.createJob(body);
  expect(created.status).toBe(202);
  return withWorker(() => api.waitForJob(created.body.id, isFinished, 120_000), modelUrl);
}

/** Every stored frame of a job: its PNG bytes, pixels (RGB) and provenance, by frame number. */
export async function storedFrames(id: string) {
  const out = new Map<number, { png: Buffer; rgb: Uint8Array; sha256: string; attempts: number }>();
  for (const f of await api.allFrames(id)) {
    if (f.status !== 'succeeded') continue;
    const png = Buffer.from(await (await fetch(f.url!)).arrayBuffer());
    out.set(f.frame, { png, rgb: decodeRgb(png).rgb, sha256: f.sha256!, attempts: f.attempts });
  }
  return out;
}

/** The keys under a job's prefix in the bucket, but the frames' thumbnails (`thumbnailsOf`). */
export async function objectsOf(job: JobResponse): Promise<string[]> {
  return (await allObjectsOf(job)).filter((k) => !k.includes('/thumbnails/'));
}

export async function thumbnailsOf(job: JobResponse): Promise<string[]> {
  return (await allObjectsOf(job)).filter((k) => k.includes('/thumbnails/'));
}

export async function allObjectsOf(job: JobResponse): Promise<string[]> {
  const prefix = job.outputPrefix.replace(/^s3:\/\/[^/]+\//, '');
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await stack.app.frameStore.s3.send(
      new ListObjectsV2Command({
        Bucket: stack.env.FRAMECAST_BUCKET,
        Prefix: prefix,
        ContinuationToken: token,
      }),
    );
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  // The job's OpenTimelineIO clip is counted by its own tests (deliverables.test.ts).
  return keys.filter((k) => !k.endsWith('.otio'));
}

/** Mean absolute difference of two frames, out of 255. */
export const mad = (a: Uint8Array, b: Uint8Array) => {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
};

export async function frameEvents(jobId: string) {
  const events = await stack.app.events.listEvents(jobId);
  return {
    succeeded: events
      .filter((e) => e.type === 'frame.succeeded')
      .map((e) => (e.data.frame as { frame: number }).frame),
    types: events.map((e) => e.type),
    events,
  };
}

export const range = (start: number, end: number) =>
  Array.from({ length: end - start + 1 }, (_, i) => start + i);
