/**
 * The business metrics' names: the runtime publishes them (functions/metrics.ts, embedded metric format)
 * and the dashboard of the Observability construct reads them by these names, per production.
 */
export const APP_METRICS = {
  namespace: 'Framecast',
  productionDimension: 'production',
  jobsSubmitted: 'JobsSubmitted',
  framesSucceeded: 'FramesSucceeded',
  framesFailed: 'FramesFailed',
  /** The spend of recorded frames, micro-dollars (core/cost.ts), and their GPU time, ms: published by the worker. */
  spendMicros: 'SpendMicros',
  gpuMilliseconds: 'GpuMilliseconds',
  /** A tenant's or the production's budget crossed its warning threshold (one per crossing). */
  budgetWarnings: 'BudgetWarnings',
} as const;

export type AppMetricName = (typeof APP_METRICS)[Exclude<
  keyof typeof APP_METRICS,
  'namespace' | 'productionDimension'
>];
