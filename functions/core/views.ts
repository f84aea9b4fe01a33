import { spendView } from './cost.ts';
import { frameCount, hasThumbnail } from './frames.ts';
import type { FrameRecord, JobEstimate, JobRecord, VersionRecord } from './model.ts';
import { unfinishedFrames } from './progress.ts';
import type { FrameResponse, JobResponse, Reroll, ReviewView } from './schemas.ts';
import { isTerminalJob } from './state.ts';
import { planWindows } from './windows.ts';

/** How records are shown to studios: in the API, and as the `data` of a webhook event. */

export function toJobResponse(job: JobRecord): JobResponse {
  return {
    id: job.id,
    shot: job.shot,
    status: job.status,
    prompt: job.prompt,
    ...(job.negativePrompt !== undefined && { negativePrompt: job.negativePrompt }),
    model: job.model,
    width: job.width,
    height: job.height,
    frames: {
      start: job.frames.start,
      end: job.frames.end,
      total: frameCount(job.frames),
      succeeded: job.succeeded,
      failed: job.failed,
      canceled: job.canceled,
      ...(job.held && !isTerminalJob(job.status) && { held: unfinishedFrames(job) }),
    },
    failedFrames: [...job.failedFrames],
    ...(job.inputs && {
      inputs: Object.fromEntries(
        Object.entries(job.inputs).map(([name, i]) => [
          name,
          { asset: i.asset, offset: i.offset, outside: i.outside },
        ]),
      ),
    }),
    ...(job.window && {
      windowMode: job.window.mode,
      window: {
        size: job.window.window,
        overlap: job.window.overlap,
        count: planWindows(job.frames, job.window).length,
      },
    }),
    ...(job.failedWindow && { failedWindow: { ...job.failedWindow } }),
    seed: job.seed,
    ...(job.output && { output: job.output }),
    seedMode: job.seedMode,
    ...(job.params !== undefined && { params: job.params as JobResponse['params'] }),
    priority: job.priority,
    ...(job.startBy !== undefined && { startBy: job.startBy }),
    ...(job.canceledReason !== undefined && { canceledReason: job.canceledReason }),
    ...(job.review && { review: reviewView(job) }),
    thumbnails: hasThumbnail(job),
    rerolls: job.rerolls ?? 0,
    createdAt: job.createdAt,
    ...(job.startedAt !== undefined && { startedAt: job.startedAt }),
    ...(job.finishedAt !== undefined && { finishedAt: job.finishedAt }),
    outputPrefix: `s3://${job.bucket}/${job.prefix}`,
    cost: spendView(job),
    ...(job.estimate && { estimate: estimateView(job.estimate) }),
    ...(job.held && !isTerminalJob(job.status) && { held: { ...job.held } }),
  };
}

/** A recorded estimate as shown: seconds and dollars. */
export const estimateView = (e: JobEstimate) => ({
  ...spendView(e),
  basis: e.basis,
  expectedStart: e.expectedStart,
  expectedFinish: e.expectedFinish,
});

/** A job's review gate as shown: its status follows from the job's and from who decided. */
function reviewView(job: JobRecord): ReviewView {
  const r = job.review!;
  const status = r.rejectedAt
    ? 'rejected'
    : r.approvedAt
      ? 'approved'
      : job.status === 'awaiting_review'
        ? 'awaiting'
        : 'pending';
  return {
    frames: [...r.frames],
    ...(r.every !== undefined && { every: r.every }),
    status,
    ...(r.requestedAt !== undefined && { requestedAt: r.requestedAt }),
    ...(r.approvedBy && { approvedBy: { ...r.approvedBy } }),
    ...(r.approvedAt !== undefined && { approvedAt: r.approvedAt }),
    ...(r.rejectedBy && { rejectedBy: { ...r.rejectedBy } }),
    ...(r.rejectedAt !== undefined && { rejectedAt: r.rejectedAt }),
    ...(r.reason !== undefined && { reason: r.reason }),
  };
}

/** A frame as listed; `url` is added by the caller that can presign. */
export function toFrameResponse(frame: FrameRecord): FrameResponse {
  return {
    frame: frame.frame,
    status: frame.status,
    seed: frame.seed,
    attempts: frame.attempts,
    ...(frame.sha256 !== undefined && { sha256: frame.sha256 }),
    ...(frame.size !== undefined && { size: frame.size }),
    ...(frame.key !== undefined && { key: frame.key }),
    ...(frame.status === 'succeeded' && { version: frame.selected ?? 1 }),
    ...(frame.error !== undefined && { error: frame.error }),
    ...(frame.predictTime !== undefined && { predictTime: frame.predictTime }),
    ...(frame.gpuMs !== undefined && { cost: spendView(frame) }),
  };
}

/** A webhook event's `data`: the job, and for frame events the frame. */
export function eventData(job: JobRecord, frame?: FrameRecord): Record<string, unknown> {
  const data: Record<string, unknown> = { ...toJobResponse(job) };
  if (frame) data.frame = toFrameResponse(frame);
  return data;
}

/** The answer to a re-roll request: the version it makes. */
export function toReroll(version: VersionRecord, frame: number): Reroll {
  return {
    jobId: version.jobId,
    frame,
    version: version.version,
    status: version.status,
    seed: version.seed,
    ...(version.params !== undefined && { params: version.params as Reroll['params'] }),
    unit: {
      start: version.start,
      end: version.end,
      ...(version.window !== undefined && { window: version.window }),
    },
    createdAt: version.createdAt,
  };
}
