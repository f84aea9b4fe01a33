import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/**
 * Business metrics, as CloudWatch embedded metric format on stdout (Powertools): the dashboard of the
 * Observability construct reads them by these names in the `Framecast` namespace, per production.
 * Local mode and the tests set POWERTOOLS_METRICS_DISABLED.
 */
export const APP_METRICS = {
  namespace: 'Framecast',
  productionDimension: 'production',
  jobsSubmitted: 'JobsSubmitted',
  framesSucceeded: 'FramesSucceeded',
  framesFailed: 'FramesFailed',
} as const;

let metrics: Metrics | undefined;

/** Counts one occurrence (or `value`) of a metric, published at once: the worker is not a Lambda. */
export function countMetric(
  name: (typeof APP_METRICS)[Exclude<keyof typeof APP_METRICS, 'namespace' | 'productionDimension'>],
  value = 1,
): void {
  metrics ??= new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? APP_METRICS.namespace,
    serviceName: 'framecast',
    defaultDimensions: { [APP_METRICS.productionDimension]: process.env.FRAMECAST_PRODUCTION ?? 'local' },
  });
  metrics.addMetric(name, MetricUnit.Count, value);
  metrics.publishStoredMetrics();
}
