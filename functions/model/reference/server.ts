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
  'port' | 'host' | 'concurrency' | 'setupDelayMs' | 'outputMode' | 'retainPredictions'
> &
  ReferencePredictorOptions;

export type ReferenceModelStats = CogServerStats;

export type ReferenceModel = CogServer;

/** The document the reference model serves at GET /openapi.json. */
export const OPENAPI_DOCUMENT = openApiDocument(referencePredictor());

/** Starts the reference model server; resolves once it listens (it reports STARTING until setup is done). */
export function startReferenceModel(options: ReferenceModelOptions = {}): Promise<ReferenceModel> {
  const { renderDelayMs, failFrames, ...server } = options;
  return startCogServer(referencePredictor({ renderDelayMs, failFrames }), server);
}
