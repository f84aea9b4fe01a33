/**
 * The API's closed lists that the command line needs as well as the schemas (schemas.ts re-exports them),
 * here without zod: `framecast` reads them on every start, and loading the schemas costs it a third of
 * its start-up.
 */

/** The events a webhook endpoint can subscribe to (docs/webhooks.md). */
export const EVENT_TYPES = [
  'job.started',
  'job.progress',
  'frame.succeeded',
  'frame.failed',
  'job.succeeded',
  'job.failed',
  'job.canceled',
  'frame.rerolled',
  'job.review_requested',
  'job.approved',
  /** A failed job's failed frames were redriven once their fault was fixed: it runs again (docs/reliability.md). */
  'job.reopened',
  /** A tenant's or the production's spend this month crossed its budget's warning threshold (once a month). */
  'budget.warning',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** How GET /v1/usage groups its figures (schemas.ts, UsageQuery). */
export const USAGE_GROUPS = ['day', 'tenant', 'shot', 'model'] as const;
