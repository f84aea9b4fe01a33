import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DryRunResponse } from '../../functions/core/schemas.ts';
import { startModelProcess } from '../../local/model-process.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';

/**
 * Estimates on the local stack (docs/operations.md, "Estimates"): a dry run is checked like a job and
 * writes nothing; a model with no record is estimated from the configured prior, and once a shot has run,
 * the estimate of running it again comes from the model's record and lands near what it then takes.
 */

let stack: LocalStack;
let api: ReturnType<typeof client>;

let model: Awaited<ReturnType<typeof startModelProcess>>;

beforeAll(async () => {
  // A fixed model time per prediction, as a GPU takes, so the record means something on a shared CPU; and
  // the model in a process of its own, as in production, so that its answers do not wait on this test
  // process's event loop (in it, a frame's slot time ran 12% to 106% over the 200 ms on a busy machine).
  model = await startModelProcess({ concurrency: 2, renderDelayMs: 200 });
  stack = await startLocalStack({
    worker: { retryBaseMs: 5, concurrency: 2 },
    modelUrl: model.url,
    env: {
      FRAMECAST_COST: JSON.stringify({
        models: { reference: { gpuHourUsd: 1.2, slots: 2 } },
        priorSecondsPerMegapixel: 3,
      }),
    },
  });
  api = client(stack.url, stack.apiKey);
});
afterAll(async () => {
  await stack?.stop();
  await model?.close();
});

const shot = (extra: Record<string, unknown> = {}) => ({
  shot: 'EST_SH010',
  prompt: 'a harbour at dusk, estimated',
  frames: { start: 1001, end: 1048 },
  seed: 11,
  // Small frames: the model's fixed 200 ms, not its rendering on a CPU the other test files share, is
  // what a frame holds the slot for, so a run on a busy machine takes what the run before it took.
  width: 64,
  height: 64,
  ...extra,
});

/** Everything the stack holds: every table item and every object of both buckets. */
async function everything(): Promise<string[]> {
  const db = new DynamoDBClient({});
  const items: string[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.send(
      new ScanCommand({
        TableName: stack.env.FRAMECAST_TABLE,
        ConsistentRead: true,
        ExclusiveStartKey: start as never,
      }),
    );
    items.push(...(page.Items ?? []).map((i) => JSON.stringify(i)));
    start = page.LastEvaluatedKey;
  } while (start);
  const s3 = new S3Client({});
  const objects: string[] = [];
  for (const bucket of [stack.env.FRAMECAST_BUCKET, stack.env.FRAMECAST_ASSET_BUCKET]) {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    objects.push(...(out.Contents ?? []).map((o) => `${bucket}/${o.Key}/${o.ETag}`));
  }
  return [...items.sort(), ...objects.sort()];
}

describe('POST /v1/jobs?dryRun=true', () => {
  it('answers an estimate from the prior for a model with no record, and writes nothing', async () => {
    const before = await everything();
    const dry = await api.estimateJob(shot({ width: 256, height: 144 }));
    expect(dry.status).toBe(200);
    const body = dry.body as DryRunResponse;
    expect(body).toMatchObject({ dryRun: true, model: 'reference', frames: 48 });
    expect(body.estimate.basis).toBe('prior');
    // 3 s per megapixel × 0.036864 MP × 48 frames, at $1.20 an hour.
    expect(body.estimate.gpuSeconds).toBeCloseTo(3 * 0.036864 * 48, 3);
    expect(body.estimate.usd).toBeCloseTo((3 * 0.036864 * 48 * 1.2) / 3600, 6);
    expect(Date.parse(body.estimate.expectedFinish)).toBeGreaterThanOrEqual(
      Date.parse(body.estimate.expectedStart),
    );
    expect(await everything()).toEqual(before);
  });

  it('refuses what a job would refuse, with the same 400, and writes nothing', async () => {
    const before = await everything();
    const bad = await api.estimateJob(shot({ width: 100 }));
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'invalid_request' } });
    expect(JSON.stringify(bad.body)).toContain('width');
    const unknownModel = await api.estimateJob(shot({ model: 'nope' }));
    expect(unknownModel.status).toBe(400);
    expect(JSON.stringify(unknownModel.body)).toContain('body.model');
    const badFlag = await api.call('POST', '/v1/jobs?dryRun=maybe', shot());
    expect(badFlag.status).toBe(400);
    expect(JSON.stringify(badFlag.body)).toContain('dryRun');
    expect(await everything()).toEqual(before);
  });
});

describe('estimate and actual', () => {
  it('estimates a second run of the same shot within 25% of what it then takes, and shows both on the job', async () => {
    const first = await api.createJob(shot());
    expect(first.status).toBe(202);
    expect(first.body.estimate?.basis).toBe('prior');
    const ran = await api.waitForJob(first.body.id, isFinished);
    expect(ran.status).toBe('succeeded');
    expect(ran.cost.gpuSeconds).toBeGreaterThan(0);

    const dry = await api.estimateJob(shot());
    const estimate = (dry.body as DryRunResponse).estimate;
    expect(estimate.basis).toBe('history');
    const second = await api.createJob(shot());
    expect(second.body.estimate).toMatchObject({ basis: 'history' });
    const done = await api.waitForJob(second.body.id, isFinished);
    expect(done.status).toBe('succeeded');
    // Side by side on the ended job: what was estimated, and what it took.
    expect(done.estimate?.gpuSeconds).toBeCloseTo(estimate.gpuSeconds, 2);
    const error = Math.abs(done.estimate!.gpuSeconds - done.cost.gpuSeconds) / done.cost.gpuSeconds;
    console.log(
      `estimate ${done.estimate!.gpuSeconds} GPU s ($${done.estimate!.usd}), actual ${done.cost.gpuSeconds} GPU s ($${done.cost.usd}): ${(error * 100).toFixed(1)}% apart`,
    );
    expect(error).toBeLessThan(0.25);
  });
});
