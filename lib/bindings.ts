import { type CfnResource, Stack, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { ContainerDefinition } from 'aws-cdk-lib/aws-ecs';
import { Effect, Grant, type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { ENV } from '../functions/shared/env.ts';
import { AUDIT_KEY_PREFIX, TABLE } from '../functions/shared/resources.ts';
import type { FramecastFunction } from './lambda.ts';

/**
 * Bindings: a process's access to a resource, declared once. Each `bind...` grants the rights and sets the
 * environment variable that names the resource, together (as aws-solutions-constructs' LambdaToSqs and
 * FargateToSqs do), so no process is told of a resource it may not touch, nor granted one it cannot find.
 * Every resource grant in the stack goes through here.
 */

/** What a binding acts on: a role to grant, and an environment to name the resource in. */
export interface BindingTarget {
  /** The role the process runs as: the function's role, or the task role of the container's task. */
  readonly role: IRole;
  addEnvironment(name: string, value: string): void;
}

/** A Lambda of the project, or an ECS container (granted through its task definition's task role). */
export type Bindable = FramecastFunction | ContainerDefinition;

function targetOf(bindable: Bindable): BindingTarget {
  if (bindable instanceof ContainerDefinition) {
    return {
      role: bindable.taskDefinition.taskRole,
      addEnvironment: (name, value) => bindable.addEnvironment(name, value),
    };
  }
  return {
    role: bindable.role,
    addEnvironment: (name, value) => bindable.function.addEnvironment(name, value),
  };
}

export type TableAccess = 'read' | 'readWrite';

/** Grants the table, read or read and write (indexes included), and sets FRAMECAST_TABLE. */
export function bindTable(bindable: Bindable, table: ITable, access: TableAccess): void {
  const target = targetOf(bindable);
  if (access === 'read') table.grantReadData(target.role);
  else {
    table.grantReadWriteData(target.role);
    // Audit records are written once and never updated (docs/operations.md, "Audit trail"): no role may.
    target.role.addToPrincipalPolicy(
      new PolicyStatement({
        effect: Effect.DENY,
        actions: ['dynamodb:UpdateItem'],
        resources: [table.tableArn],
        conditions: { 'ForAnyValue:StringLike': { 'dynamodb:LeadingKeys': [`${AUDIT_KEY_PREFIX}*`] } },
      }),
    );
  }
  Validations.of(target.role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${arnToken(table)}/index/*]`,
    reason: `Queries read the table's global secondary indexes (${TABLE.indexes.map((i) => i.name).join(', ')}), named <table>/index/*.`,
  });
  target.addEnvironment(ENV.table, table.tableName);
}

/**
 * What a process may do with frames and manifests. Object actions only, never on the bucket itself.
 * - `nameOnly`: nothing; it knows the bucket to name output prefixes (`s3://bucket/...`) in job responses.
 * - `read`: GetObject, for presigned downloads (the URL carries the signer's right, and nothing more).
 * - `write`: put frames and manifests (multipart above 5 MB), and delete a frame whose record lost the race.
 * - `readWrite`: both; the worker reads back what it stored: a chained window's context frames (presigned
 *   for the model) and the versions parallel windows stage for the cross-fade.
 */
const READ = ['s3:GetObject'] as const;
const WRITE = ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'] as const;
export const BUCKET_ACCESS = {
  nameOnly: [],
  read: READ,
  write: WRITE,
  readWrite: [...READ, ...WRITE],
} as const satisfies Record<string, readonly string[]>;

export type BucketAccess = keyof typeof BUCKET_ACCESS;

/** Grants the access's object actions in the frames bucket and sets FRAMECAST_BUCKET. */
export function bindBucket(bindable: Bindable, bucket: IBucket, access: BucketAccess): void {
  const target = targetOf(bindable);
  const actions: readonly string[] = BUCKET_ACCESS[access];
  if (actions.length > 0) {
    Grant.addToPrincipal({
      grantee: target.role,
      actions: [...actions],
      resourceArns: [bucket.arnForObjects('*')],
    });
    Validations.of(target.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${arnToken(bucket)}/*]`,
      reason: `Object keys (<tenant>/<shot>/<job>/...) are known only at run time; the grant is ${actions.join(', ')} on objects only.`,
    });
  }
  target.addEnvironment(ENV.bucket, bucket.bucketName);
}

/**
 * What a process may do with asset content (the asset bucket, `<tenant>/sha256/<hex>`).
 * - `upload`: PutObject, which the presigned upload URLs carry; and HEAD to learn what is held already.
 * - `verify`: HEAD and ranged GETs of the content, to check its checksum, format and size.
 * - `remove`: DeleteObject, for content no asset holds any more.
 * - `read`: GetObject, for the worker's presigned input URLs.
 * HEAD needs ListBucket on the bucket, or S3 answers a missing key with 403 instead of 404.
 */
export const ASSET_ACCESS = {
  upload: { objects: ['s3:PutObject', 's3:GetObject'], bucket: ['s3:ListBucket'] },
  verify: { objects: ['s3:GetObject'], bucket: ['s3:ListBucket'] },
  remove: { objects: ['s3:DeleteObject'], bucket: [] },
  /** The worker: GetObject, which the presigned URLs of a job's inputs carry to the model. */
  read: { objects: ['s3:GetObject'], bucket: [] },
} as const satisfies Record<string, { objects: readonly string[]; bucket: readonly string[] }>;

export type AssetAccess = keyof typeof ASSET_ACCESS;

/** Grants the access's actions on the asset bucket and its objects, and sets FRAMECAST_ASSET_BUCKET. */
export function bindAssetBucket(bindable: Bindable, bucket: IBucket, access: AssetAccess): void {
  const target = targetOf(bindable);
  const { objects, bucket: onBucket } = ASSET_ACCESS[access];
  Grant.addToPrincipal({
    grantee: target.role,
    actions: [...objects],
    resourceArns: [bucket.arnForObjects('*')],
  });
  if (onBucket.length > 0)
    Grant.addToPrincipal({ grantee: target.role, actions: [...onBucket], resourceArns: [bucket.bucketArn] });
  Validations.of(target.role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${arnToken(bucket)}/*]`,
    reason: `Asset content is keyed by tenant and SHA-256 (<tenant>/sha256/<hex>), known only at run time; the grant is ${objects.join(', ')} on objects only.`,
  });
  target.addEnvironment(ENV.assetBucket, bucket.bucketName);
}

/**
 * `consumeAndSend`: a consumer that also puts messages back (a job planned in steps, a webhook retry).
 * `depth`: reads the queue's attributes (how many messages wait) and nothing else.
 */
export type QueueAccess = 'send' | 'consume' | 'consumeAndSend' | 'depth';

function grantQueue(queue: IQueue, role: IRole, access: QueueAccess): void {
  if (access === 'depth') {
    queue.grant(role, 'sqs:GetQueueAttributes');
    return;
  }
  if (access !== 'send') queue.grantConsumeMessages(role);
  if (access !== 'consume') queue.grantSendMessages(role);
}

/** Grants a queue, send or consume or both, and sets `envName` to its URL. */
export function bindQueue(bindable: Bindable, queue: IQueue, access: QueueAccess, envName: string): void {
  const target = targetOf(bindable);
  grantQueue(queue, target.role, access);
  target.addEnvironment(envName, queue.queueUrl);
}

/** Grants a set of queues, each alike, and sets `envName` to their URLs as JSON `{"<key>": "<url>"}`. */
export function bindQueues(
  bindable: Bindable,
  queues: ReadonlyMap<string, IQueue>,
  access: QueueAccess,
  envName: string,
): void {
  const target = targetOf(bindable);
  for (const queue of queues.values()) grantQueue(queue, target.role, access);
  target.addEnvironment(envName, queueUrlsJson(target.role, queues));
}

/** `{"<key>": "<queue URL>"}` as a JSON string that CloudFormation completes at deploy time. */
export function queueUrlsJson(scope: IConstruct, queues: ReadonlyMap<string, IQueue>): string {
  return Stack.of(scope).toJsonString(
    Object.fromEntries([...queues].map(([key, queue]) => [key, queue.queueUrl])),
  );
}

/** `<LogicalId.Arn>`: how cdk-nag spells a resource's ARN in a finding id. */
function arnToken(resource: IConstruct): string {
  const cfn = resource.node.defaultChild as CfnResource;
  return `<${Stack.of(resource).resolve(cfn.logicalId)}.Arn>`;
}
