import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * SDK clients, made once per process and handed to the adapters, so a test can pass in a client on an
 * emulator or a mocked one. Endpoints and credentials come from the environment alone
 * (AWS_ENDPOINT_URL_* in local mode), so the same code runs in AWS and on the emulators.
 */
export interface AwsClients {
  readonly dynamo: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly sqs: SQSClient;
}

export function createClients(): AwsClients {
  const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({ maxAttempts: 5 }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  // WHEN_REQUIRED: a presigned URL must not carry the checksum of an empty body, or real S3 refuses
  // uploads to it; and a streamed PutObject must not use aws-chunked framing that emulators store raw.
  const s3 = new S3Client({
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const sqs = new SQSClient({ maxAttempts: 5 });
  return { dynamo, s3, sqs };
}

let shared: AwsClients | undefined;

/** The process's clients, created at first use (cold start) and reused by every invocation. */
export const clients = (): AwsClients => {
  shared ??= createClients();
  return shared;
};
