import type { FrameRecord, JobRecord } from './model.ts';
import { toJobResponse } from './views.ts';
import { frameOrigin, planWindows } from './windows.ts';

/**
 * A job's `manifest.json` (the design's "Frames in S3"): the request, the model and its image, and per
 * frame its file, seed, sha256, size, timings, inputs, window and, once re-rolled, every version. Written
 * by the worker when the job ends, and again after a re-roll or a select of a job that has ended.
 */
export function manifestOf(job: JobRecord, frames: readonly FrameRecord[], modelImage: string) {
  const view = toJobResponse(job);
  const windowed = job.window && { ...job, window: job.window };
  const windows = windowed && planWindows(job.frames, windowed.window);
  const sha256Of = new Map(frames.map((f) => [f.frame, f.sha256]));
  return {
    framecast: 1,
    job: view,
    request: {
      shot: job.shot,
      prompt: job.prompt,
      ...(job.negativePrompt !== undefined && { negativePrompt: job.negativePrompt }),
      model: job.model,
      width: job.width,
      height: job.height,
      frames: job.frames,
      seed: job.seed,
      seedMode: job.seedMode,
      ...(job.params !== undefined && { params: job.params }),
      ...(job.window && { windowMode: job.window.mode, window: view.window }),
    },
    model: { name: job.model, image: modelImage },
    frames: frames.map((f) => ({
      frame: f.frame,
      file: f.key ? f.key.slice(f.key.lastIndexOf('/') + 1) : undefined,
      status: f.status,
      seed: f.seed,
      attempts: f.attempts,
      sha256: f.sha256,
      size: f.size,
      predictTime: f.predictTime,
      startedAt: f.startedAt,
      finishedAt: f.finishedAt,
      ...(f.error !== undefined && { error: f.error }),
      // The sha256 of every input file the frame was made from, by input name.
      ...(f.inputs !== undefined && { inputs: f.inputs }),
      // The window that made the frame, its seed and context, or the two windows cross-faded into it:
      // what the frame's PNG provenance says.
      ...(windowed && windows && frameOrigin(windowed, windows, f.frame, (n) => sha256Of.get(n))),
      // Once re-rolled: the version the sequence name holds, and every version with its seed and params.
      ...(f.versions !== undefined && { version: f.selected ?? 1, versions: f.versions }),
    })),
  };
}
