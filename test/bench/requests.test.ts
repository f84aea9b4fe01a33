import { describe, expect, it } from 'vitest';
import { PRICES } from '../../bench/prices.ts';
import { dynamoUnits, RequestCounter } from '../../bench/requests.ts';

describe('pricing counted requests', () => {
  it('takes a transaction of N items as 2N write units and a consistent read as one read unit', () => {
    expect(dynamoUnits('TransactWriteItems', { TransactItems: [{}, {}, {}] })).toEqual({ wru: 6, rru: 0 });
    expect(dynamoUnits('UpdateItem', {})).toEqual({ wru: 1, rru: 0 });
    expect(dynamoUnits('GetItem', { ConsistentRead: true })).toEqual({ wru: 0, rru: 1 });
    expect(dynamoUnits('GetItem', {})).toEqual({ wru: 0, rru: 0.5 });
    expect(dynamoUnits('BatchWriteItem', { RequestItems: { t: [{}, {}] } })).toEqual({ wru: 2, rru: 0 });
  });

  it('counts by operation and prices each service at the table’s prices; S3 deletes are free', () => {
    const counter = new RequestCounter();
    const send = (service: string, operation: string, input: unknown = {}) =>
      counter.observe({ service, operation, input });
    send('DynamoDB', 'TransactWriteItems', { TransactItems: [{}, {}] });
    send('DynamoDB', 'GetItem', { ConsistentRead: true });
    send('S3', 'PutObject');
    send('S3', 'HeadObject');
    send('S3', 'DeleteObject');
    send('SQS', 'SendMessageBatch', { Entries: [{}] });
    const counted = counter.reset();
    expect(counted.total).toBe(6);
    expect(counted.byOperation()).toEqual({
      'DynamoDB.GetItem': 1,
      'DynamoDB.TransactWriteItems': 1,
      'S3.DeleteObject': 1,
      'S3.HeadObject': 1,
      'S3.PutObject': 1,
      'SQS.SendMessageBatch': 1,
    });
    const cost = counted.cost({ invocations: 2, assumedMsEach: 100, memoryMb: 1024 });
    expect(cost.dynamodb).toBeCloseTo(
      4 * PRICES.dynamodb.perWriteRequestUnit + PRICES.dynamodb.perReadRequestUnit,
      15,
    );
    expect(cost.s3).toBeCloseTo(PRICES.s3.perPutRequest + PRICES.s3.perGetRequest, 15);
    expect(cost.sqs).toBeCloseTo(PRICES.sqs.perRequest, 15);
    expect(cost.lambda).toBeCloseTo(2 * PRICES.lambda.perRequest + 2 * 0.1 * PRICES.lambda.perGbSecond, 15);
    expect(cost.total).toBeCloseTo(cost.dynamodb + cost.s3 + cost.sqs + cost.lambda, 15);
    expect(counter.reset().total).toBe(0);
  });
});
