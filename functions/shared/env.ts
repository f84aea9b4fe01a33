/**
 * The names of the environment variables that configure the runtime. The CDK stack (lib/) and local mode
 * (local/) set them; functions/config.ts parses them. Shared here so that both sides spell them once.
 */
export const ENV = {
  table: 'FRAMECAST_TABLE',
  bucket: 'FRAMECAST_BUCKET',
  assetBucket: 'FRAMECAST_ASSET_BUCKET',
  assetMaxFileBytes: 'FRAMECAST_ASSET_MAX_FILE_BYTES',
  planQueueUrl: 'FRAMECAST_PLAN_QUEUE_URL',
  frameQueueUrl: 'FRAMECAST_FRAME_QUEUE_URL',
  frameQueueUrls: 'FRAMECAST_FRAME_QUEUE_URLS',
  /** Senders: the high and low priority bands of each model, `{"<model>:<band>": url}` (core/fair-share.ts). */
  frameQueueBandUrls: 'FRAMECAST_FRAME_QUEUE_BAND_URLS',
  /** The worker: its model's high and low bands, `{"high": url, "low": url}`, beside FRAMECAST_FRAME_QUEUE_URL. */
  frameQueueBands: 'FRAMECAST_FRAME_QUEUE_BANDS',
  /**
   * The worker: its model's frame DLQ, where it puts frames that failed every attempt, to be redriven once
   * the fault is fixed (docs/reliability.md, "Poison and redrive"). Without it they are only recorded failed.
   */
  frameDlqUrl: 'FRAMECAST_FRAME_DLQ_URL',
  eventQueueUrl: 'FRAMECAST_EVENT_QUEUE_URL',
  eventDlqUrl: 'FRAMECAST_EVENT_DLQ_URL',
  frameLimit: 'FRAMECAST_FRAME_LIMIT',
  models: 'FRAMECAST_MODELS',
  modelSpecs: 'FRAMECAST_MODEL_SPECS',
  urlExpirySeconds: 'FRAMECAST_URL_EXPIRY_SECONDS',
  chunkSize: 'FRAMECAST_CHUNK_SIZE',
  /** Fair share: chunks of one job queued and unfinished at most (core/fair-share.ts). */
  fairShareChunks: 'FRAMECAST_FAIR_SHARE_CHUNKS',
  maxAttempts: 'FRAMECAST_MAX_ATTEMPTS',
  modelUrl: 'FRAMECAST_MODEL_URL',
  modelName: 'FRAMECAST_MODEL_NAME',
  modelImage: 'FRAMECAST_MODEL_IMAGE',
  workerConcurrency: 'FRAMECAST_WORKER_CONCURRENCY',
  /** Whether a model slot's next prediction is pipelined behind the running one (worker/cog.ts): 1 or 0. */
  modelPipelining: 'FRAMECAST_MODEL_PIPELINING',
  /** How long a chunk the worker received stays hidden from others if the worker dies (its heartbeat renews it). */
  workerVisibilitySeconds: 'FRAMECAST_WORKER_VISIBILITY_SECONDS',
  /** After how long a webhook attempt claimed by a sender that never recorded it may be made again. */
  webhookClaimStaleSeconds: 'FRAMECAST_WEBHOOK_CLAIM_STALE_SECONDS',
  webhookAllowLoopback: 'FRAMECAST_WEBHOOK_ALLOW_LOOPBACK',
  webhookAllowedHosts: 'FRAMECAST_WEBHOOK_ALLOWED_HOSTS',
  /** Local mode's gateway only: origins a browser page may call the API from (the stack: config `api.corsOrigins`). */
  corsOrigins: 'FRAMECAST_CORS_ORIGINS',
  production: 'FRAMECAST_PRODUCTION',
  // The colour pipeline (docs/colour.md): the OCIO config, the plates' and the model's colour spaces.
  ocioConfig: 'FRAMECAST_OCIO_CONFIG',
  plateColourSpace: 'FRAMECAST_PLATE_COLOUR_SPACE',
  modelColourSpace: 'FRAMECAST_MODEL_COLOUR_SPACE',
  exrCompression: 'FRAMECAST_EXR_COMPRESSION',
  /** Delivered frame names: the production's template and default pass (docs/colour.md, "Naming"). */
  namingTemplate: 'FRAMECAST_NAMING_TEMPLATE',
  namingPass: 'FRAMECAST_NAMING_PASS',
  /** The production's trackers, as JSON (core/publish.ts); credentials come from their secrets. */
  publishers: 'FRAMECAST_PUBLISHERS',
  /** Local mode only: the trackers' credentials as JSON by tracker, instead of Secrets Manager. */
  publishCredentials: 'FRAMECAST_PUBLISH_CREDENTIALS',
  /** Frames per second of a job's OpenTimelineIO clip. */
  frameRate: 'FRAMECAST_FRAME_RATE',
  /** The oiiotool program (default: found on the PATH). */
  oiiotool: 'FRAMECAST_OIIOTOOL',
  reviewPageDir: 'FRAMECAST_REVIEW_PAGE_DIR',
  /** Days an audit record is kept (docs/operations.md, "Audit trail"); the frames' retention is separate. */
  auditRetentionDays: 'FRAMECAST_AUDIT_RETENTION_DAYS',
  reviewSources: 'FRAMECAST_REVIEW_SOURCES',
  /** Prices, fleet sizes, the estimate prior and the production budget, as JSON (shared/cost.ts). */
  cost: 'FRAMECAST_COST',
} as const;
