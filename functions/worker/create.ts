import { isTransientAwsError } from '../adapters/clients.ts';
import { Oiio } from '../adapters/oiio.ts';
import { loadConfig } from '../config.ts';
import { usdToMicros } from '../core/cost.ts';
import { windowFrames } from '../core/fair-share.ts';
import type { Container } from '../services/container.ts';
import { modelCost } from '../shared/cost.ts';
import { WORKER_HEARTBEAT_SECONDS } from '../shared/resources.ts';
import { CogClient } from './cog.ts';
import { deliverFrames, exrPlates, timelineWriter } from './deliverables.ts';
import { assetInputs } from './inputs.ts';
import { modelIdentity, once } from './model-image.ts';
import { BandedQueue } from './polling.ts';
import { thumbnail } from './thumbnail.ts';
import { stagedInputKeys } from './video-input.ts';
import { Worker, type WorkerSettings } from './worker.ts';

/** Long-poll wait of the worker's receives: SQS's longest. */
const WAIT_SECONDS = 20;
/**
 * How long the worker keeps putting recorded events on the event queue while SQS refuses them, past the
 * SDK's own retries. An event is recorded with the change it announces; a publish that fails fails the
 * message, whose redelivery re-publishes frame events, but may find the job moved on (a job.progress
 * step taken, the job ended) and not announce it again: an outage of SQS is better waited out here.
 */
const PUBLISH_PATIENCE_MS = 60_000;

async function patiently(send: () => Promise<void>, patienceMs: number): Promise<void> {
  const until = Date.now() + patienceMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (!isTransientAwsError(err) || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 5000)));
    }
  }
}

/** A worker wired from the environment: the container's entry point and local mode build it alike. */
export function createWorker(
  app: Container,
  env: Record<string, string | undefined> = process.env,
  overrides: Partial<WorkerSettings> = {},
) {
  const config = loadConfig(
    [
      'modelUrl',
      'modelName',
      'modelImage',
      'maxAttempts',
      'workerConcurrency',
      'modelPipelining',
      'workerVisibilitySeconds',
      'modelSpecs',
      'ocioConfig',
      'plateColourSpace',
      'modelColourSpace',
      'exrCompression',
      'oiiotool',
      'namingTemplate',
      'chunkSize',
      'fairShareChunks',
      'frameRate',
      'cost',
      'modelName',
    ],
    env,
  );
  const oiio = new Oiio(
    {
      config: config.ocioConfig,
      plates: config.plateColourSpace,
      model: config.modelColourSpace,
      compression: config.exrCompression,
    },
    config.oiiotool,
  );
  // EXR plates reach the model as PNGs in its colour space (docs/colour.md); other files as they are.
  const plates = exrPlates(
    {
      head: (tenant, sha256) => app.assetFiles.read(tenant, sha256, 0, 4),
      read: (tenant, sha256) => app.assetFiles.get(tenant, sha256),
      presign: (tenant, sha256) => app.assetFiles.presignGet(tenant, sha256),
      exists: async (key) => (await app.frameStore.metadataOf(key)) !== undefined,
      put: (key, png) => app.frameStore.putFile(key, png, 'image/png'),
      presignStaged: async (key) => (await app.frameStore.presignGet(key)).url,
    },
    oiio,
  );
  const worker: Worker = new Worker({
    store: app.store,
    events: app.events,
    // The worker writes a thumbnail beside each frame it stores (the API only reads them).
    frames: app.frameStore.withThumbnails(thumbnail),
    // The model's priority bands, highest first (./polling.ts); one queue when the stack has no bands.
    // An empty band is asked again once per long-poll period: the cost of one more long-polling consumer.
    queue: new BandedQueue(app.frameBands, { recheckMs: (overrides.waitSeconds ?? WAIT_SECONDS) * 1000 }),
    versions: app.versionStore,
    model: new CogClient({
      url: config.modelUrl,
      onBusy: () => worker.modelBusy(),
      slots: overrides.concurrency ?? config.workerConcurrency,
      pipelining: config.modelPipelining,
    }),
    publishEvents: (events) => patiently(() => app.publishEvents(events), PUBLISH_PATIENCE_MS),
    frameEventsWanted: (job) => app.webhooks.wantsAny(job, ['frame.succeeded', 'frame.failed']),
    inputsFor: assetInputs({
      files: (asset, frames) => app.assetStore.getFiles(asset, frames),
      presign: plates.presign,
      specs: config.modelSpecs,
      video: {
        read: plates.read,
        staged: async (key) => (await app.frameStore.metadataOf(key))?.['frames-sha256'],
        put: (key, video, contentType, framesSha256) =>
          app.frameStore.putFile(key, video, contentType, { 'frames-sha256': framesSha256 }),
        presign: async (key) => (await app.frameStore.presignGet(key)).url,
      },
    }),
    inputFiles: (job) => stagedInputKeys(job, config.modelSpecs),
    deliver: deliverFrames(oiio, config.namingTemplate),
    naming: config.namingTemplate,
    // Asked once: a pinned reference's digest, or on ECS the model container's from the task metadata.
    modelIdentity: once(() =>
      modelIdentity({
        name: config.modelName,
        image: config.modelImage,
        metadataUri: env.ECS_CONTAINER_METADATA_URI_V4,
      }),
    ),
    // Frames that failed every attempt wait in the frame DLQ for a redrive once fixed (docs/reliability.md).
    ...(app.frameDeadLetters && {
      deadLetter: (body: string) => app.frameDeadLetters!.send(body),
    }),
    // Fair share: a finished chunk may ask the fan-out to release more of its job (./fair-share.ts).
    sendPlan: (body) => app.planQueue.send(body),
    releaseWindow: windowFrames(config.chunkSize, config.fairShareChunks),
    budgets: {
      standings: (tenant) => app.budgets.standings(tenant),
      store: app.budgetStore,
    },
    writeTimeline: timelineWriter((key, value) => app.frameStore.putJson(key, value), {
      naming: config.namingTemplate,
      rate: config.frameRate,
      exrColourSpace: config.plateColourSpace,
    }),
    settings: {
      concurrency: config.workerConcurrency,
      maxAttempts: config.maxAttempts,
      visibilitySeconds: config.workerVisibilitySeconds,
      // Renewed well before it runs out, however short it is set.
      heartbeatSeconds: Math.min(WORKER_HEARTBEAT_SECONDS, config.workerVisibilitySeconds / 3),
      waitSeconds: WAIT_SECONDS,
      retryBaseMs: 1000,
      modelImage: config.modelImage,
      gpuHourMicros: usdToMicros(modelCost(config.cost, config.modelName).gpuHourUsd),
      ...overrides,
    },
  });
  return worker;
}
