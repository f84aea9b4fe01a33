import type { JobRecord } from '../core/model.ts';

/**
 * The seam for a job's inputs (plates, masks, control passes: the design's "Job inputs"). Given the job
 * and the frames one prediction makes, in order (one frame, or a window's frames), it gives the extra
 * Cog inputs of that prediction (each a URL, or an ordered list of URLs one per frame) and, for each
 * frame, the sha256 of every input file it was made from, which the frame's provenance records.
 *
 * The worker calls it for every prediction, chunked or windowed, and knows nothing else of inputs: the
 * window logic stays as it is when inputs arrive. Jobs have no inputs yet, so it gives nothing.
 */
export interface PredictionInputs {
  /** Cog inputs by name, added to the prediction's input as they are. */
  readonly inputs?: Readonly<Record<string, unknown>>;
  /** Frame number → input name → sha256 of the file that frame was given. */
  readonly hashes?: ReadonlyMap<number, Readonly<Record<string, string>>>;
}

export type InputsFor = (job: JobRecord, frames: readonly number[]) => Promise<PredictionInputs>;

/** Jobs without inputs: every prediction so far. */
export const noInputs: InputsFor = async () => ({});
