import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { APP_METRICS, type AppMetricName } from './shared/metrics.ts';

/**
 * Business metrics, as CloudWatch embedded metric format on stdout (Powertools), under the names of
 * shared/metrics.ts. The API's handlers publish them once per request (api/middleware/metrics.ts); the
 * worker, which is not a Lambda, publishes after each count. Local mode and the tests set
 * POWERTOOLS_METRICS_DISABLED.
 */
let metrics: Metrics | undefined;

const processMetrics = (): Metrics => {
  metrics ??= new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? APP_METRICS.namespace,
    serviceName: 'framecast',
    defaultDimensions: { [APP_METRICS.productionDimension]: process.env.FRAMECAST_PRODUCTION ?? 'local' },
  });
  return metrics;
};

/** Counts one occurrence (or `value`) of a metric; `publishMetrics` sends what was counted. */
export function countMetric(name: AppMetricName, value = 1): void {
  processMetrics().addMetric(name, MetricUnit.Count, value);
}

/** Publishes the metrics counted since the last call, if any. */
export function publishMetrics(): void {
  if (metrics?.hasStoredMetrics()) metrics.publishStoredMetrics();
}
