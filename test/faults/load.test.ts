import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../functions/adapters/clients.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { ENV } from '../../functions/shared/env.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';

/**
 * Load (issue 14, point 5): 50 studios' scripts at once submit 200 jobs of 25 frames (5,000 frames of
 * 64x64) to the local stack and poll them to the end, as a studio's client does. What must hold: no 5xx,
 * every job terminal and succeeded, and every frame stored exactly once (S3 objects counted). The run
 * prints its throughput and the API's latency percentiles; docs/reliability.md records the last figures.
 */

const CLIENTS = 50;
const JOBS = Number(process.env.LOAD_JOBS ?? 200);
const FRAMES_PER_JOB = 25;
const POLL_MS = 2000;

let stack: LocalStack;
beforeAll(async () => {
  // Eight worker slots (the renders are tiny; the slots overlap the AWS requests) and chunks of five frames.
  // LOAD_JOBS, LOAD_CONCURRENCY and LOAD_CHUNK change the run for exploring; CI runs the defaults.
  stack = await startLocalStack({
    withoutWebhooks: true,
    worker: { concurrency: Number(process.env.LOAD_CONCURRENCY ?? 8) },
    env: { [ENV.chunkSize]: process.env.LOAD_CHUNK ?? '5' },
  });
});
afterAll(() => stack?.stop());

interface Sample {
  readonly route: 'submit' | 'get';
  readonly ms: number;
  readonly status: number;
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;

describe('50 concurrent clients, 200 jobs, 5,000 frames', () => {
  it('answer no 5xx, finish every job and store every frame once', async () => {
    const samples: Sample[] = [];
    async function call(route: Sample['route'], method: string, path: string, body?: unknown) {
      const started = performance.now();
      const res = await fetch(stack.url + path, {
        method,
        headers: {
          authorization: `Bearer ${stack.apiKey}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      const json = (await res.json()) as JobResponse;
      samples.push({ route, ms: performance.now() - started, status: res.status });
      return { status: res.status, body: json };
    }

    const started = performance.now();
    const finished: JobResponse[] = [];
    const progress = setInterval(() => {
      const done = finished.length;
      console.log(
        `load: ${Math.round((performance.now() - started) / 1000)} s, ${done} jobs done, ${samples.length} requests`,
      );
    }, 10_000);
    let lastDone = started;
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        const mine: string[] = [];
        for (let j = c; j < JOBS; j += CLIENTS) {
          const start = 1001 + j * 100;
          const res = await call('submit', 'POST', '/v1/jobs', {
            shot: `LOAD_SH${String(j).padStart(3, '0')}`,
            prompt: `load test shot ${j}`,
            width: 64,
            height: 64,
            frames: { start, end: start + FRAMES_PER_JOB - 1 },
            seed: j,
            thumbnails: true,
          });
          expect(res.status, JSON.stringify(res.body)).toBe(202);
          mine.push(res.body.id);
        }
        // Poll each job to its end, as the client's waitForJob does.
        for (const id of mine) {
          for (;;) {
            const res = await call('get', 'GET', `/v1/jobs/${id}`);
            expect(res.status).toBe(200);
            if (['succeeded', 'failed', 'canceled'].includes(res.body.status)) {
              finished.push(res.body);
              lastDone = performance.now();
              break;
            }
            await new Promise((ok) => setTimeout(ok, POLL_MS));
          }
        }
      }),
    );
    clearInterval(progress);
    const seconds = (lastDone - started) / 1000;

    // No 5xx, every job terminal and succeeded with exact counters.
    expect(samples.filter((s) => s.status >= 500)).toEqual([]);
    expect(finished).toHaveLength(JOBS);
    for (const job of finished) {
      expect(job.status, job.id).toBe('succeeded');
      expect(job.frames).toMatchObject({ total: FRAMES_PER_JOB, succeeded: FRAMES_PER_JOB, failed: 0 });
    }

    // Every frame stored once: one PNG per frame under its job's prefix and its thumbnail beside it,
    // nothing else but one manifest and one OpenTimelineIO clip a job.
    const s3 = createClients().s3;
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: stack.env[ENV.bucket], ContinuationToken: token }),
      );
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    const pngs = keys.filter((k) => k.endsWith('.png'));
    expect(pngs).toHaveLength(JOBS * FRAMES_PER_JOB);
    expect(new Set(pngs).size).toBe(pngs.length);
    expect(keys.filter((k) => k.includes('/thumbnails/'))).toHaveLength(JOBS * FRAMES_PER_JOB);
    expect(keys.filter((k) => k.endsWith('/manifest.json'))).toHaveLength(JOBS);
    expect(keys.filter((k) => k.endsWith('.otio'))).toHaveLength(JOBS);
    expect(keys).toHaveLength(JOBS * (2 * FRAMES_PER_JOB + 2));
    for (const job of finished) {
      const prefix = job.outputPrefix.replace(/^s3:\/\/[^/]+\//, '');
      expect(
        pngs.filter((k) => k.startsWith(prefix)),
        job.id,
      ).toHaveLength(FRAMES_PER_JOB);
    }

    const figures = (route: Sample['route']) => {
      const ms = samples
        .filter((s) => s.route === route)
        .map((s) => s.ms)
        .sort((a, b) => a - b);
      const f = (v: number) => Math.round(v * 10) / 10;
      return {
        requests: ms.length,
        p50: f(percentile(ms, 50)),
        p95: f(percentile(ms, 95)),
        p99: f(percentile(ms, 99)),
        max: f(ms.at(-1) ?? Number.NaN),
      };
    };
    const report = {
      clients: CLIENTS,
      jobs: JOBS,
      frames: JOBS * FRAMES_PER_JOB,
      seconds: Math.round(seconds * 10) / 10,
      framesPerSecond: Math.round((JOBS * FRAMES_PER_JOB * 10) / seconds) / 10,
      jobsPerMinute: Math.round((JOBS * 60 * 10) / seconds) / 10,
      status5xx: 0,
      latencyMs: { submit: figures('submit'), get: figures('get') },
    };
    console.log(`load figures: ${JSON.stringify(report, null, 2)}`);
  }, 900_000);
});
