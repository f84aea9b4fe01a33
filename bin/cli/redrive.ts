import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  GetQueueAttributesCommand,
  ListDeadLetterSourceQueuesCommand,
  ListMessageMoveTasksCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import type { QueueName } from '../../functions/shared/resources.ts';
import type { LocalConnectionFile } from '../../local/stack.ts';

/**
 * `framecast redrive`: moves the messages of a queue's dead-letter queue back to the queue they came
 * from, once the fault that sent them there is fixed (docs/operations.md, "Alarms and dashboard"). It is
 * SQS's own redrive (StartMessageMoveTask, as `aws sqs start-message-move-task` and the console's "Start
 * DLQ redrive"), waited for and counted. Redriving is always safe: every consumer takes a message it has
 * already handled for the duplicate it is (docs/architecture.md, "Exactly once").
 *
 * Which DLQ: `--dlq-url` (a deployed stack's: the `<queue>DeadLetters` alarm names the queue; `aws sqs
 * list-queues` lists the URLs), reached with the standard AWS credential chain and region; else the local
 * stack that `npm run dev` runs from this folder (`.framecast/local.json`, `--local DIR` for another).
 */

export class RedriveUsageError extends Error {}

export interface RedriveTarget {
  readonly sqs: SQSClient;
  readonly dlqUrl: string;
  /** For the human output: the DLQ's URL and where it is. */
  readonly where: string;
}

export interface RedriveResult {
  readonly dlqUrl: string;
  readonly moved: number;
  readonly status: string;
  readonly failureReason?: string;
}

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const QUEUE_NAMES: readonly QueueName[] = ['plan', 'frame', 'event'];

export function parseQueue(value: string): QueueName {
  // "frames", "plans", "events" read as naturally as the singular.
  const name = value.replace(/s$/, '');
  if (!(QUEUE_NAMES as readonly string[]).includes(name))
    throw new RedriveUsageError(`--queue: "${value}" is not a queue; one of ${QUEUE_NAMES.join(', ')}`);
  return name as QueueName;
}

export async function redriveTarget(flags: {
  queue: QueueName;
  dlqUrl?: string;
  region?: string;
  local?: string;
}): Promise<RedriveTarget> {
  if (flags.dlqUrl) {
    const sqs = new SQSClient({ maxAttempts: 5, ...(flags.region && { region: flags.region }) });
    const region = await sqs.config.region().catch(() => undefined);
    if (!region) throw new RedriveUsageError('no AWS region for --dlq-url: give --region or set AWS_REGION');
    return { sqs, dlqUrl: flags.dlqUrl, where: `${flags.dlqUrl} (${region})` };
  }
  const path = join(resolve(flags.local ?? '.framecast'), 'local.json');
  let file: LocalConnectionFile;
  try {
    file = JSON.parse(await readFile(path, 'utf8')) as LocalConnectionFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new RedriveUsageError(
        `no dead-letter queue: give --dlq-url (a deployed stack's), or start the local stack here (npm run dev writes ${path})`,
      );
    throw new RedriveUsageError(`${path}: ${(err as Error).message}`);
  }
  if (!file.sqs)
    throw new RedriveUsageError(
      `${path} names no queues: restart the local stack (npm run dev) to write them`,
    );
  // Local mode runs one frame queue for every model.
  const dlqUrl = file.sqs.queues[flags.queue].dlqUrl;
  const sqs = new SQSClient({
    endpoint: file.sqs.endpoint,
    region: file.dynamodb.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  return { sqs, dlqUrl, where: `${dlqUrl} (the local stack, from ${path})` };
}

/** The ARN of the one queue that dead-letters into `dlqUrl`; undefined if none or several do. */
async function soleSourceArn(sqs: SQSClient, dlqUrl: string): Promise<string | undefined> {
  const { queueUrls } = await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlqUrl }));
  if (queueUrls?.length !== 1) return undefined;
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrls[0], AttributeNames: ['QueueArn'] }),
  );
  return Attributes?.QueueArn;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts SQS's move of the DLQ's messages back to their source queue and waits until it ends: the
 * messages moved, and the task's status (COMPLETED, or FAILED with SQS's reason).
 */
export async function redrive(
  target: RedriveTarget,
  options: { pollMs?: number; timeoutMs?: number } = {},
): Promise<RedriveResult> {
  const { sqs, dlqUrl } = target;
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: dlqUrl,
      AttributeNames: ['QueueArn', 'ApproximateNumberOfMessages'],
    }),
  );
  const arn = Attributes?.QueueArn;
  if (!arn) throw new Error(`SQS answered no QueueArn for ${dlqUrl}`);
  if (Number(Attributes?.ApproximateNumberOfMessages ?? 0) === 0)
    return { dlqUrl, moved: 0, status: 'COMPLETED' };
  // Named, not left to SQS: the frames a worker dead-letters itself (docs/reliability.md, "Poison and
  // redrive") carry no source queue, and SQS fails a move without a destination on them
  // (CouldNotDetermineMessageSource). Every DLQ of the stack has one source queue.
  const destination = await soleSourceArn(sqs, dlqUrl);
  const { TaskHandle } = await sqs.send(
    new StartMessageMoveTaskCommand({ SourceArn: arn, ...(destination && { DestinationArn: destination }) }),
  );
  const deadline = Date.now() + (options.timeoutMs ?? 15 * 60_000);
  for (;;) {
    const { Results } = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: arn, MaxResults: 10 }));
    const task = Results?.find((r) => r.TaskHandle === TaskHandle) ?? Results?.[0];
    if (task && task.Status !== 'RUNNING' && task.Status !== 'CANCELLING') {
      return {
        dlqUrl,
        moved: task.ApproximateNumberOfMessagesMoved ?? 0,
        status: task.Status ?? 'UNKNOWN',
        ...(task.FailureReason && { failureReason: task.FailureReason }),
      };
    }
    if (Date.now() > deadline)
      throw new Error(
        `the move of ${dlqUrl} still runs (${task?.ApproximateNumberOfMessagesMoved ?? 0} moved); aws sqs list-message-move-tasks --source-arn ${arn} follows it`,
      );
    await sleep(options.pollMs ?? 1000);
  }
}
