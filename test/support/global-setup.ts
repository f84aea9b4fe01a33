import { SHARED_DYNAMODB_ENV, startSharedDynamoDb } from '../../local/emulators.ts';

/**
 * One DynamoDB Local for every test file (local/emulators.ts, `sharedDynamoDb`): each set of emulators a
 * test starts makes its table on it under a name of its own, instead of starting a JVM of its own. On
 * two cores the suite's JVMs took about a quarter of its CPU, most of it starting and warming up. A set
 * on a data directory (the restart tests) and one that asks for it still start their own.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const dynamo = await startSharedDynamoDb();
  // Read by the test files' processes, which vitest starts after this.
  process.env[SHARED_DYNAMODB_ENV] = dynamo.endpoint;
  return async () => {
    delete process.env[SHARED_DYNAMODB_ENV];
    await dynamo.stop();
  };
}
