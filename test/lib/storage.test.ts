import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { TABLE } from '../../functions/shared/resources.ts';
import { Storage } from '../../lib/storage.ts';
import { cliLikeApp, idAt, resourcesOf, synthesize } from './synth.ts';

const { template, stack } = synthesize('demo', { retentionDays: 45 });

const storageOnly = (removalPolicy: RemovalPolicy.RETAIN | RemovalPolicy.DESTROY) => {
  const stack = new Stack(cliLikeApp(), 'StorageOnly');
  new Storage(stack, 'Storage', { retentionDays: 30, removalPolicy });
  return Template.fromStack(stack);
};

describe('Storage', () => {
  it('keeps records in an on-demand table with point-in-time recovery and TTL', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
    });
  });

  it('has the global secondary indexes the API queries', () => {
    const [table] = Object.values(resourcesOf(template, 'AWS::DynamoDB::Table'));
    const indexes = table?.Properties?.GlobalSecondaryIndexes as {
      IndexName: string;
      KeySchema: { AttributeName: string }[];
      Projection: unknown;
    }[];
    expect(
      indexes.map((i) => ({ name: i.IndexName, keys: i.KeySchema.map((k) => k.AttributeName) })),
    ).toEqual(TABLE.indexes.map((i) => ({ name: i.name, keys: [i.partitionKey, i.sortKey] })));
    for (const index of indexes) expect(index.Projection).toEqual({ ProjectionType: 'ALL' });
  });

  it('blocks public access to every bucket and encrypts it', () => {
    const buckets = Object.values(resourcesOf(template, 'AWS::S3::Bucket'));
    expect(buckets).toHaveLength(3);
    for (const bucket of buckets) {
      expect(bucket.Properties).toMatchObject({
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
      });
    }
  });

  it('refuses any request without TLS to every bucket', () => {
    const policies = Object.values(resourcesOf(template, 'AWS::S3::BucketPolicy'));
    expect(policies).toHaveLength(3);
    for (const policy of policies) {
      expect(policy.Properties?.PolicyDocument).toMatchObject({
        Statement: expect.arrayContaining([
          expect.objectContaining({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      });
    }
  });

  it('expires frames after the configured retention and logs access to them', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'frames/' }),
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ ExpirationInDays: 45, Status: 'Enabled' }),
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
        ]),
      },
    });
  });

  it('keeps frames until they are deleted when the production sets no retention, and expires plate conversions', () => {
    const kept = synthesize('kept', {});
    const frames = resourcesOf(kept.template, 'AWS::S3::Bucket')[idAt(kept.stack, 'Storage/Frames')];
    const lifecycle = frames?.Properties?.LifecycleConfiguration as
      | { Rules: Record<string, unknown>[] }
      | undefined;
    const rules = lifecycle?.Rules ?? [];
    expect(rules.filter((r) => r.ExpirationInDays !== undefined && r.Prefix === undefined)).toEqual([]);
    expect(rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Prefix: '.colour/', ExpirationInDays: 7, Status: 'Enabled' }),
      ]),
    );
  });

  it('keeps assets in a bucket of their own that never expires, and logs access to it', () => {
    const assets = resourcesOf(template, 'AWS::S3::Bucket')[idAt(stack, 'Storage/Assets')];
    expect(assets?.Properties).toMatchObject({ LoggingConfiguration: { LogFilePrefix: 'assets/' } });
    expect(assets?.Properties?.LifecycleConfiguration).toBeUndefined();
  });

  it('retains the table and the buckets when the stack is deleted, by default', () => {
    const retained = { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' };
    for (const type of ['AWS::DynamoDB::Table', 'AWS::S3::Bucket', 'AWS::Logs::LogGroup']) {
      for (const resource of Object.values(resourcesOf(template, type)))
        expect(resource).toMatchObject(retained);
    }
    template.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: true });
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });

  it('deletes the table and empties and deletes the buckets when the config says destroy', () => {
    const disposable = storageOnly(RemovalPolicy.DESTROY);
    for (const type of ['AWS::DynamoDB::Table', 'AWS::S3::Bucket']) {
      for (const resource of Object.values(resourcesOf(disposable, type)))
        expect(resource).toMatchObject({ DeletionPolicy: 'Delete' });
    }
    disposable.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false });
    disposable.resourceCountIs('Custom::S3AutoDeleteObjects', 3);
    storageOnly(RemovalPolicy.RETAIN).resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });
});
