import { loadConfig } from '../config.ts';
import type { Container } from '../services/container.ts';
import { QUEUES, WORKER_HEARTBEAT_SECONDS } from '../shared/resources.ts';
import { CogClient } from './cog.ts';
import { assetInputs } from './inputs.ts';
import { thumbnail } from './thumbnail.ts';
import { stagedInputKeys } from './video-input.ts';
import { Worker, type WorkerSettings } from './worker.ts';

/** A worker wired from the environment: the container's entry point and local mode build it alike. */
export function createWorker(
  app: Container,
  env: Record<string, string | undefined> = process.env,
  overrides: Partial<WorkerSettings> = {},
) {
  const config = loadConfig(
    ['modelUrl', 'modelImage', 'maxAttempts', 'workerConcurrency', 'modelSpecs'],
    env,
  );
  return new Worker({
    store: app.store,
    events: app.events,
    // The worker writes a thumbnail beside each frame it stores (the API only reads them).
    frames: app.frameStore.withThumbnails(thumbnail),
    queue: app.frameQueue,
    versions: app.versionStore,
    model: new CogClient({ url: config.modelUrl }),
    publishEvents: app.publishEvents,
    inputsFor: assetInputs({
      files: (asset, frames) => app.assetStore.getFiles(asset, frames),
      presign: (tenant, sha256) => app.assetFiles.presignGet(tenant, sha256),
      specs: config.modelSpecs,
      video: {
        read: (tenant, sha256) => app.assetFiles.get(tenant, sha256),
        staged: async (key) => (await app.frameStore.metadataOf(key))?.['frames-sha256'],
        put: (key, video, contentType, framesSha256) =>
          app.frameStore.putFile(key, video, contentType, { 'frames-sha256': framesSha256 }),
        presign: async (key) => (await app.frameStore.presignGet(key)).url,
      },
    }),
    inputFiles: (job) => stagedInputKeys(job, config.modelSpecs),
    settings: {
      concurrency: config.workerConcurrency,
      maxAttempts: config.maxAttempts,
      visibilitySeconds: QUEUES.frame.visibilityTimeoutSeconds,
      heartbeatSeconds: WORKER_HEARTBEAT_SECONDS,
      waitSeconds: 20,
      retryBaseMs: 1000,
      modelImage: config.modelImage,
      ...overrides,
    },
  });
}
