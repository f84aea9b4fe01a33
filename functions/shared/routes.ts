import type { Scope } from '../core/model.ts';

/**
 * The HTTP API's routes: one Lambda handler each. The CDK Api construct (lib/api.ts) makes a function and
 * its grants from each row; local mode (local/gateway.ts) routes requests to the same handler modules.
 */
export interface RouteDefinition {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** API Gateway route path, with `{name}` parameters. */
  readonly path: string;
  /** Handler module, relative to the project root; it exports `handler`. */
  readonly entry: string;
  /** The scope the caller's API key needs; undefined for public routes. */
  readonly scope?: Scope;
  /**
   * A handler that does thousands of S3 and DynamoDB requests (a 10,000-frame asset) gets more time, up
   * to what API Gateway waits (30 s), and more memory, which is more CPU for the SDK's work.
   * @default 15 s and 512 MiB
   */
  readonly timeoutSeconds?: number;
  readonly memoryMiB?: number;
  /** What the handler may touch, for least-privilege grants. */
  readonly access: {
    readonly table?: 'read' | 'readWrite';
    readonly bucket?: 'read' | 'readWrite';
    /** Asset content: sign uploads and see what is held, verify it, or remove it (lib/bindings.ts). */
    readonly assets?: 'upload' | 'verify' | 'remove' | 'read';
    /** `frameDepth`: reads how many messages wait on each frame queue (estimates), and sends nothing. */
    readonly queues?: readonly ('plan' | 'frame' | 'event' | 'frameDepth')[];
  };
}

export const ROUTES: readonly RouteDefinition[] = [
  {
    method: 'POST',
    path: '/v1/jobs',
    entry: 'functions/api/create-job.ts',
    scope: 'jobs:write',
    // The table is read for the job's webhook URL check too; DNS is resolved for it (SSRF policy). The
    // frame queues' depth is the backlog an estimate counts (docs/operations.md, "Estimates").
    access: { table: 'readWrite', queues: ['plan', 'frameDepth'] },
  },
  {
    method: 'GET',
    path: '/v1/jobs',
    entry: 'functions/api/list-jobs.ts',
    scope: 'jobs:read',
    access: { table: 'read' },
  },
  {
    method: 'GET',
    path: '/v1/jobs/{id}',
    entry: 'functions/api/get-job.ts',
    scope: 'jobs:read',
    access: { table: 'read' },
  },
  {
    method: 'GET',
    path: '/v1/jobs/{id}/frames',
    entry: 'functions/api/list-frames.ts',
    scope: 'jobs:read',
    access: { table: 'read', bucket: 'read' },
  },
  {
    method: 'GET',
    path: '/v1/jobs/{id}/frames/{frame}',
    entry: 'functions/api/get-frame.ts',
    scope: 'jobs:read',
    access: { table: 'read', bucket: 'read' },
  },
  {
    method: 'POST',
    path: '/v1/jobs/{id}/frames/{frame}/retry',
    entry: 'functions/api/reroll-frame.ts',
    scope: 'jobs:write',
    access: { table: 'readWrite', queues: ['frame'] },
  },
  {
    // Copies the version onto the sequence name and rewrites the manifest of a job that has ended.
    method: 'POST',
    path: '/v1/jobs/{id}/frames/{frame}/select',
    entry: 'functions/api/select-frame-version.ts',
    scope: 'jobs:write',
    access: { table: 'readWrite', bucket: 'readWrite' },
  },
  {
    method: 'POST',
    path: '/v1/jobs/{id}/cancel',
    entry: 'functions/api/cancel-job.ts',
    scope: 'jobs:write',
    access: { table: 'readWrite', queues: ['event'] },
  },
  {
    method: 'POST',
    path: '/v1/jobs/{id}/approve',
    entry: 'functions/api/approve-job.ts',
    scope: 'jobs:write',
    access: { table: 'readWrite', queues: ['plan', 'event'] },
  },
  {
    method: 'POST',
    path: '/v1/jobs/{id}/reject',
    entry: 'functions/api/reject-job.ts',
    scope: 'jobs:write',
    access: { table: 'readWrite', queues: ['event'] },
  },
  {
    method: 'GET',
    path: '/v1/jobs/{id}/events',
    entry: 'functions/api/list-events.ts',
    scope: 'jobs:read',
    access: { table: 'read' },
  },
  {
    method: 'POST',
    path: '/v1/events/{id}/redeliver',
    entry: 'functions/api/redeliver-event.ts',
    scope: 'webhooks:manage',
    access: { table: 'read', queues: ['event'] },
  },
  {
    method: 'POST',
    path: '/v1/webhooks',
    entry: 'functions/api/create-webhook.ts',
    scope: 'webhooks:manage',
    access: { table: 'readWrite' },
  },
  {
    method: 'GET',
    path: '/v1/webhooks',
    entry: 'functions/api/list-webhooks.ts',
    scope: 'webhooks:manage',
    access: { table: 'read' },
  },
  {
    method: 'DELETE',
    path: '/v1/webhooks/{id}',
    entry: 'functions/api/delete-webhook.ts',
    scope: 'webhooks:manage',
    access: { table: 'readWrite' },
  },
  {
    method: 'GET',
    path: '/v1/webhooks/secret',
    entry: 'functions/api/get-webhook-secret.ts',
    scope: 'webhooks:manage',
    access: { table: 'readWrite' },
  },
  {
    method: 'POST',
    path: '/v1/webhooks/secret/rotate',
    entry: 'functions/api/rotate-webhook-secret.ts',
    scope: 'webhooks:manage',
    access: { table: 'readWrite' },
  },
  {
    method: 'POST',
    path: '/v1/assets',
    entry: 'functions/api/create-asset.ts',
    scope: 'assets:write',
    memoryMiB: 1024,
    access: { table: 'readWrite', assets: 'upload' },
  },
  {
    method: 'GET',
    path: '/v1/assets',
    entry: 'functions/api/list-assets.ts',
    scope: 'assets:read',
    access: { table: 'read' },
  },
  {
    method: 'GET',
    path: '/v1/assets/{id}',
    entry: 'functions/api/get-asset.ts',
    scope: 'assets:read',
    access: { table: 'read' },
  },
  {
    method: 'GET',
    path: '/v1/assets/{id}/frames/{frame}',
    entry: 'functions/api/get-asset-frame.ts',
    scope: 'assets:read',
    access: { table: 'read', assets: 'read' },
  },
  {
    method: 'POST',
    path: '/v1/assets/{id}/files',
    entry: 'functions/api/add-asset-files.ts',
    scope: 'assets:write',
    memoryMiB: 1024,
    access: { table: 'readWrite', assets: 'upload' },
  },
  {
    method: 'POST',
    path: '/v1/assets/{id}/complete',
    entry: 'functions/api/complete-asset.ts',
    scope: 'assets:write',
    timeoutSeconds: 29,
    memoryMiB: 1769,
    access: { table: 'readWrite', assets: 'verify' },
  },
  {
    method: 'DELETE',
    path: '/v1/assets/{id}',
    entry: 'functions/api/delete-asset.ts',
    scope: 'assets:write',
    timeoutSeconds: 29,
    memoryMiB: 1024,
    access: { table: 'readWrite', assets: 'remove' },
  },
  {
    // Reads the tenant's audit partition only; audit records are written by the changes they record.
    method: 'GET',
    path: '/v1/audit',
    entry: 'functions/api/list-audit.ts',
    scope: 'audit:read',
    access: { table: 'read' },
  },
  {
    // Money (docs/operations.md, "Prices, spend and budgets"): a tenant's own spend; every tenant's for admin keys.
    method: 'GET',
    path: '/v1/usage',
    entry: 'functions/api/get-usage.ts',
    scope: 'jobs:read',
    access: { table: 'read' },
  },
  {
    method: 'PUT',
    path: '/v1/budgets/{tenant}',
    entry: 'functions/api/put-budget.ts',
    scope: 'admin',
    access: { table: 'readWrite' },
  },
  { method: 'GET', path: '/v1/openapi.json', entry: 'functions/api/openapi.ts', access: {} },
];

/**
 * The review page (review/): static files, public because the page holds no data; every API call it makes
 * carries the user's API key. One function serves both routes. Not part of the API, so kept out of
 * ROUTES (no client method, not in the OpenAPI document); local mode serves them beside it.
 */
export const PAGE_ROUTES: readonly RouteDefinition[] = [
  { method: 'GET', path: '/', entry: 'functions/review/handler.ts', access: {} },
  { method: 'GET', path: '/review/{file}', entry: 'functions/review/handler.ts', access: {} },
];

/** The Lambda consumers of the plan and event queues, and the worker's container entry points. */
export const CONSUMERS = {
  fanout: { entry: 'functions/fanout/handler.ts', queue: 'plan' as const },
  webhooks: { entry: 'functions/webhooks/handler.ts', queue: 'event' as const },
  worker: { entry: 'functions/worker/main.ts', queue: 'frame' as const },
  referenceModel: { entry: 'functions/model/reference/main.ts' },
};
