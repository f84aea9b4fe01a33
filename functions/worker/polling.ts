import type { Queue, ReceivedMessage } from '../adapters/queues.ts';
import { BANDS, type Band } from '../core/fair-share.ts';

/** What the worker does with its frame queue; one queue or a model's priority bands alike. */
export type FrameQueue = Pick<Queue, 'receive' | 'delete' | 'setVisibility' | 'send'> & {
  /** Looks at the queue before the first receive, if there is anything to learn (`BandedQueue.prime`). */
  prime?(): Promise<void>;
};

export interface BandPollingOptions {
  /** How long a band found empty is left alone while others are polled (ms); SQS long polls last 20 s. */
  readonly recheckMs?: number;
  readonly now?: () => number;
}

/**
 * A model's priority bands (core/fair-share.ts) read as one frame queue, highest band first.
 *
 * SQS cannot wait on several queues in one request, and an empty receive is billed like any other, so
 * bands are not all polled every time: each receive asks the bands in order, from the highest, with no
 * wait, skipping a band found empty less than `recheckMs` ago, and stops once it has what it asked for.
 * Only when every band it asked was empty does it long-poll, on the normal band (where jobs are by
 * default). A band with work is asked on every receive, so it is drained before the bands below it; an
 * empty band costs at most one receive per `recheckMs` (the rate of one more long-polling consumer), and
 * its first message waits at most that long, plus the chunks the worker holds already.
 *
 * A receipt handle names its band (`<band>:<SQS handle>`), so deleting a message or changing its
 * visibility goes to the queue it came from without any state kept here.
 */
export class BandedQueue implements FrameQueue {
  private readonly emptyAt = new Map<Band, number>();
  private readonly recheckMs: number;
  private readonly now: () => number;
  private readonly order: readonly Band[];

  constructor(
    private readonly bands: Readonly<Partial<Record<Band, Queue>>> & { readonly normal: Queue },
    options: BandPollingOptions = {},
  ) {
    this.recheckMs = options.recheckMs ?? 20_000;
    this.now = options.now ?? Date.now;
    this.order = BANDS.filter((b) => bands[b] !== undefined);
  }

  private queueOf(band: Band): Queue {
    return this.bands[band] ?? this.bands.normal;
  }

  async receive(options: Parameters<Queue['receive']>[0]): Promise<ReceivedMessage[]> {
    const got: ReceivedMessage[] = [];
    const take = async (band: Band, waitSeconds: number) => {
      const messages = await this.queueOf(band).receive({
        ...options,
        max: options.max - got.length,
        waitSeconds,
      });
      if (messages.length === 0) this.emptyAt.set(band, this.now());
      else this.emptyAt.delete(band);
      got.push(...messages.map((m) => ({ ...m, receiptHandle: `${band}:${m.receiptHandle}` })));
    };
    if (this.order.length === 1) {
      await take('normal', options.waitSeconds);
      return got;
    }
    const cold = (band: Band) => {
      const emptyAt = this.emptyAt.get(band);
      return emptyAt !== undefined && this.now() - emptyAt < this.recheckMs;
    };
    let waited = false;
    for (const [index, band] of this.order.entries()) {
      if (got.length >= options.max) break;
      if (cold(band)) continue;
      // The normal band waits (a long poll) when nothing came from above and no band below is due: a
      // band below with work is never kept waiting behind an empty normal band.
      const wait =
        band === 'normal' && got.length === 0 && this.order.slice(index + 1).every(cold)
          ? options.waitSeconds
          : 0;
      waited ||= wait > 0;
      await take(band, wait);
    }
    if (got.length === 0 && !waited && options.waitSeconds > 0) await take('normal', options.waitSeconds);
    return got;
  }

  /**
   * Counts the messages of the bands other than normal before the first receive (the worker does it
   * beside the model's set-up), and leaves a band that shows none alone for `recheckMs`, as if a receive
   * had found it empty: the first receive then does not ask each empty band in turn while the model
   * waits for its first work. A hint, as a receive without wait is (SQS counts are approximate, and a
   * short poll may miss a message): a band counted empty wrongly is asked within `recheckMs`, as after
   * an empty receive. A band that cannot be counted is left to the receive.
   */
  async prime(): Promise<void> {
    await Promise.all(
      this.order
        .filter((band) => band !== 'normal')
        .map(async (band) => {
          const counted = await this.queueOf(band)
            .depth()
            .catch(() => undefined);
          if (counted?.visible === 0) this.emptyAt.set(band, this.now());
        }),
    );
  }

  private split(handle: string): { queue: Queue; handle: string } {
    const at = handle.indexOf(':');
    const band = handle.slice(0, at) as Band;
    if (at < 0 || !BANDS.includes(band)) return { queue: this.bands.normal, handle };
    return { queue: this.queueOf(band), handle: handle.slice(at + 1) };
  }

  async delete(receiptHandle: string): Promise<void> {
    const { queue, handle } = this.split(receiptHandle);
    await queue.delete(handle);
  }

  async setVisibility(receiptHandle: string, seconds: number): Promise<void> {
    const { queue, handle } = this.split(receiptHandle);
    await queue.setVisibility(handle, seconds);
  }

  /** A message the worker sends itself (a chained window's next): the normal band. */
  async send(body: string, delaySeconds?: number): Promise<void> {
    await this.bands.normal.send(body, delaySeconds);
  }
}
