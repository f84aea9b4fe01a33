import { openApiDocument } from '../cog/openapi.ts';
import { type CogServer, type CogServerOptions, type CogServerStats, startCogServer } from '../cog/server.ts';
import {
  REFERENCE_DESCRIPTION,
  REFERENCE_VERSION,
  type ReferencePredictorOptions,
  referencePredictor,
} from './predictor.ts';

/**
 * The `reference` model server: the reference predictor (`predictor.ts`, the procedural renderer on render
 * threads) behind the Cog HTTP prediction contract (`../cog/server.ts`). Local mode and the tests run it
 * where production runs a Cog-packaged image, so the worker talks to both the same way.
 */

export { REFERENCE_DESCRIPTION, REFERENCE_VERSION };

/** The server's options a local stack or a test sets, and the predictor's (delays and injected faults). */
export type ReferenceModelOptions = Pick<
  CogServerOptions,
  'port' | 'host' | 'concurrency' | 'setupDelayMs' | 'outputMode' | 'retainPredictions' | 'maxBodyBytes'
> &
  ReferencePredictorOptions;

export type ReferenceModelStats = CogServerStats;

export type ReferenceModel = CogServer;

/** The document the reference model serves at GET /openapi.json. */
export const OPENAPI_DOCUMENT = openApiDocument(referencePredictor());

// Plates may come as data URLs (tests, direct callers): room for a window of them. The worker sends URLs.
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Starts the reference model server; resolves once it listens (it reports STARTING until setup is done). */
export function startReferenceModel(options: ReferenceModelOptions = {}): Promise<ReferenceModel> {
  const { renderDelayMs, failFrames, output, imageTimeoutMs, maxImageBytes, ...server } = options;
  return startCogServer(
    referencePredictor({ renderDelayMs, failFrames, output, imageTimeoutMs, maxImageBytes }),
    { maxBodyBytes: MAX_BODY_BYTES, ...server },
  );
}
