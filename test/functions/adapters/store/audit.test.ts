import { DynamoDBClient, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { JobStore } from '../../../../functions/adapters/store/jobs.ts';
import type { FrameRecord } from '../../../../functions/core/model.ts';
import { jobRecord } from '../../../support/jobs.ts';

/** The end of a long shot: its audit parts, in the terminal transaction and after it. */

const dynamo = mockClient(DynamoDBDocumentClient);
const db = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
beforeEach(() => dynamo.reset());

const FRAMES = 3000;
const job = jobRecord({
  id: 'job_01JD0000000000000000000000',
  tenant: 'studio',
  prompt: 'a long shot',
  frames: { start: 1, end: FRAMES },
  seed: 7,
  succeeded: FRAMES,
  createdAt: '2026-11-30T10:00:00.000Z',
  prefix: 'p/',
});
const frames = Array.from(
  { length: FRAMES },
  (_, i) =>
    ({
      jobId: job.id,
      frame: i + 1,
      status: 'succeeded',
      seed: i,
      attempts: 1,
      sha256: 'a'.repeat(64),
      size: 1,
      key: 'k',
    }) as FrameRecord,
);
const model = { name: 'reference', image: 'img', digest: null };

describe("a long shot's end records", () => {
  it('put the first part in the terminal transaction and each further part once after it, all conditional', async () => {
    dynamo.on(TransactWriteCommand).resolves({});
    dynamo.on(PutCommand).resolves({});
    const done = await new JobStore(db, 't', 30).finalizeIfDone(job.id, new Date(), job, { frames, model });
    expect(done?.job.status).toBe('succeeded');
    const [tx] = dynamo.commandCalls(TransactWriteCommand).map((c) => c.args[0].input.TransactItems!);
    const audits = tx!.filter((i) => String(i.Put?.Item?.pk).startsWith('AUDIT#'));
    expect(audits).toHaveLength(1);
    const after = dynamo.commandCalls(PutCommand).map((c) => c.args[0].input);
    expect(after.length).toBeGreaterThan(0);
    const parts = [audits[0]!.Put!, ...after];
    const count = (parts[0]!.Item!.part as { count: number }).count;
    expect(parts).toHaveLength(count);
    for (const p of parts) {
      expect(p.ConditionExpression).toBe('attribute_not_exists(pk)');
      expect(p.Item!.pk).toBe('AUDIT#studio');
      expect(p.Item!.expiresAt).toBe(Math.floor(Date.parse(String(p.Item!.at)) / 1000) + 30 * 86_400);
    }
    expect(parts.flatMap((p) => p.Item!.outputs as unknown[])).toHaveLength(FRAMES);
  });

  it('still end the job and answer its event when a later part cannot be written', async () => {
    dynamo.on(TransactWriteCommand).resolves({});
    dynamo
      .on(PutCommand)
      .rejects(new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} }));
    const done = await new JobStore(db, 't').finalizeIfDone(job.id, new Date(), job, { frames, model });
    expect(done?.event?.type).toBe('job.succeeded');
  });
});
