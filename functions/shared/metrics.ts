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
} as const;

export type AppMetricName = (typeof APP_METRICS)[Exclude<
  keyof typeof APP_METRICS,
  'namespace' | 'productionDimension'
>];
