import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { APP_METRICS, type AppMetricName } from './shared/metrics.ts';

/**
 * Business metrics, as CloudWatch embedded metric format on stdout (Powertools), under the names of
 * shared/metrics.ts. Local mode and the tests set POWERTOOLS_METRICS_DISABLED.
 */
let metrics: Metrics | undefined;

/** Counts one occurrence (or `value`) of a metric, published at once: the worker is not a Lambda. */
export function countMetric(name: AppMetricName, value = 1): void {
  metrics ??= new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? APP_METRICS.namespace,
    serviceName: 'framecast',
    defaultDimensions: { [APP_METRICS.productionDimension]: process.env.FRAMECAST_PRODUCTION ?? 'local' },
  });
  metrics.addMetric(name, MetricUnit.Count, value);
  metrics.publishStoredMetrics();
}
