import {
  DynamoDBClient,
  ProvisionedThroughputExceededException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { statusIn, transact } from '../../../../functions/adapters/store/table.ts';
import { frameStatusesBefore, jobStatusesBefore } from '../../../../functions/core/state.ts';

const dynamo = mockClient(DynamoDBDocumentClient);
const db = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));

const canceled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: 'cancelled',
    $metadata: {},
    CancellationReasons: codes.map((Code) => ({ Code })),
  });

const items = {
  job: { ConditionCheck: { TableName: 't', Key: { pk: 'JOB#1', sk: 'JOB' }, ConditionExpression: 'a' } },
  frame: { Put: { TableName: 't', Item: { pk: 'JOB#1', sk: 'FRAME#1' } } },
};

beforeEach(() => dynamo.reset());

describe('a status condition', () => {
  it('is an equality for the one status a move is legal from', () => {
    expect(statusIn(jobStatusesBefore('awaiting_review'))).toEqual({
      condition: '#status = :was_running',
      values: { ':was_running': 'running' },
    });
  });

  it('lists every status a move is legal from, under the attribute name and prefix given', () => {
    expect(statusIn(frameStatusesBefore('running'), '#s', 'from')).toEqual({
      condition: '#s IN (:from_pending, :from_running)',
      values: { ':from_pending': 'pending', ':from_running': 'running' },
    });
  });

  it('refuses a move that no status allows, rather than writing a condition that never holds', () => {
    expect(() => statusIn(jobStatusesBefore('queued'))).toThrow(/no status allows/);
  });
});

describe('a transaction', () => {
  it('sends the named items in the order given and answers ok', async () => {
    dynamo.on(TransactWriteCommand).resolves({});
    expect(await transact(db, items)).toEqual({ ok: true });
    expect(dynamo.commandCalls(TransactWriteCommand)[0]!.args[0].input.TransactItems).toEqual([
      items.job,
      items.frame,
    ]);
  });

  it('names the first item whose condition failed', async () => {
    dynamo.on(TransactWriteCommand).rejects(canceled('None', 'ConditionalCheckFailed'));
    expect(await transact(db, items)).toMatchObject({ ok: false, failed: 'frame', conflict: false });
    dynamo.on(TransactWriteCommand).rejects(canceled('ConditionalCheckFailed', 'ConditionalCheckFailed'));
    expect(await transact(db, items)).toMatchObject({ ok: false, failed: 'job' });
  });

  it('says when it lost to a concurrent transaction, with no failed condition', async () => {
    dynamo.on(TransactWriteCommand).rejects(canceled('TransactionConflict', 'None'));
    const written = await transact(db, items);
    expect(written).toMatchObject({ ok: false, failed: undefined, conflict: true });
    expect(!written.ok && written.error).toBeInstanceOf(TransactionCanceledException);
  });

  it('throws a refusal for any other reason, and any other error, as it came', async () => {
    const throttled = canceled('ThrottlingError', 'None');
    dynamo.on(TransactWriteCommand).rejects(throttled);
    await expect(transact(db, items)).rejects.toBe(throttled);
    const overloaded = new ProvisionedThroughputExceededException({ message: 'slow down', $metadata: {} });
    dynamo.on(TransactWriteCommand).rejects(overloaded);
    await expect(transact(db, items)).rejects.toBe(overloaded);
  });
});
