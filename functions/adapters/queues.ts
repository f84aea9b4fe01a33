import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

export interface ReceivedMessage {
  readonly id: string;
  readonly body: string;
  readonly receiptHandle: string;
  readonly receiveCount: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One SQS queue: batched sends that retry partial failures, long-poll receives, visibility changes. */
export class Queue {
  constructor(
    private readonly sqs: SQSClient,
    readonly url: string,
  ) {}

  /** Sends every body, ten to a request; entries SQS refuses for a passing reason are sent again. */
  async sendAll(bodies: readonly string[], delaySeconds?: number): Promise<void> {
    for (let i = 0; i < bodies.length; i += 10) {
      let pending = bodies
        .slice(i, i + 10)
        .map((body, n) => ({ Id: String(n), MessageBody: body, DelaySeconds: delaySeconds }));
      for (let attempt = 0; pending.length > 0; attempt++) {
        const out = await this.sqs.send(
          new SendMessageBatchCommand({ QueueUrl: this.url, Entries: pending }),
        );
        const failed = out.Failed ?? [];
        if (failed.length === 0) break;
        const fatal = failed.find((f) => f.SenderFault);
        if (fatal || attempt >= 5) {
          throw new Error(
            `SQS refused ${failed.length} message(s): ${(fatal ?? failed[0])?.Code ?? 'unknown'}`,
          );
        }
        const retry = new Set(failed.map((f) => f.Id));
        pending = pending.filter((e) => retry.has(e.Id));
        await sleep(100 * 2 ** attempt);
      }
    }
  }

  async send(body: string, delaySeconds?: number): Promise<void> {
    await this.sendAll([body], delaySeconds);
  }

  async receive(options: {
    max: number;
    waitSeconds: number;
    visibilitySeconds?: number;
    signal?: AbortSignal;
  }): Promise<ReceivedMessage[]> {
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.url,
        MaxNumberOfMessages: Math.min(10, Math.max(1, options.max)),
        WaitTimeSeconds: options.waitSeconds,
        VisibilityTimeout: options.visibilitySeconds,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
      { abortSignal: options.signal },
    );
    return (out.Messages ?? []).map((m) => ({
      id: m.MessageId ?? '',
      body: m.Body ?? '',
      receiptHandle: m.ReceiptHandle ?? '',
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '1'),
    }));
  }

  async delete(receiptHandle: string): Promise<void> {
    await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.url, ReceiptHandle: receiptHandle }));
  }

  /** Messages waiting plus messages in flight: the backlog a fleet scales on. */
  async depth(): Promise<{ visible: number; inFlight: number }> {
    const out = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  }

  async setVisibility(receiptHandle: string, seconds: number): Promise<void> {
    await this.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.url,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  }
}
