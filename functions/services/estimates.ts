import { type Estimate, estimateJob, type ModelHistory, usdToMicros } from '../core/cost.ts';
import { frameCount } from '../core/frames.ts';
import type { JobEstimate, JobRecord } from '../core/model.ts';
import { logger } from '../logger.ts';
import { type CostSettings, modelCost } from '../shared/cost.ts';

export interface EstimatorDeps {
  /** A model's record of finished jobs (UsageStore.modelHistory). */
  readonly history: (model: string) => Promise<ModelHistory | undefined>;
  /** Messages waiting or in flight on the model's frame queue. */
  readonly queued: (model: string) => Promise<number>;
  /** Frames a queue message carries (a chunk's, FRAMECAST_CHUNK_SIZE): what a message of backlog weighs. */
  readonly chunkSize: number;
  readonly cost: CostSettings;
}

/**
 * What a job will take before it runs (core/cost.ts `estimateJob`): the model's record, or the prior, the
 * backlog on its queue and the size of its fleet. Two reads, neither a write: a dry run changes nothing.
 */
export class Estimator {
  constructor(private readonly deps: EstimatorDeps) {}

  async estimate(
    job: Pick<JobRecord, 'model' | 'width' | 'height' | 'frames'>,
    now = new Date(),
  ): Promise<Estimate> {
    const { cost } = this.deps;
    const [history, queued] = await Promise.all([
      this.deps.history(job.model),
      // The backlog only moves the expected start: a queue that cannot be read is counted as empty.
      this.deps.queued(job.model).catch((err: unknown) => {
        logger.warn('frame queue depth unknown; estimating with no backlog', { error: err as Error });
        return 0;
      }),
    ]);
    const model = modelCost(cost, job.model);
    return estimateJob({
      width: job.width,
      height: job.height,
      frames: frameCount(job.frames),
      history,
      priorSecondsPerMegapixel: cost.priorSecondsPerMegapixel,
      hourMicros: usdToMicros(model.gpuHourUsd),
      backlogFrames: queued * this.deps.chunkSize,
      fleetSlots: model.slots,
      now,
    });
  }
}

/** What a job keeps of its estimate. */
export const recordedEstimate = (e: Estimate): JobEstimate => ({
  gpuMs: e.gpuMs,
  costMicros: e.costMicros,
  basis: e.basis,
  expectedStart: e.expectedStart,
  expectedFinish: e.expectedFinish,
});
