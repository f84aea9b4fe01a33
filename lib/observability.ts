import { Duration, Stack, Validations } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import type { AutoScalingGroup } from 'aws-cdk-lib/aws-autoscaling';
import { CfnBudget } from 'aws-cdk-lib/aws-budgets';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { Cluster } from 'aws-cdk-lib/aws-ecs';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { APP_METRICS } from '../functions/shared/metrics.ts';
import type { FramecastFunction } from './lambda.ts';
import type { ModelService } from './model-service.ts';
import type { WorkQueue } from './queues.ts';

/**
 * The application metrics the runtime publishes (Embedded Metric Format, e.g. Powertools Metrics): namespace
 * `Framecast`, a `production` dimension equal to FRAMECAST_PRODUCTION, any other dimensions allowed (the
 * dashboard finds them with SEARCH, which matches whatever else a metric carries).
 */

/** How old a message may get before ops hear of it, by queue kind. */
export const OLDEST_MESSAGE_AGE = {
  // Planning takes seconds: a plan message this old means the fan-out is failing or throttled.
  plan: Duration.minutes(15),
  // Chunks wait for GPU hosts (boot, image pull) and behind long jobs; hours mean the fleet is stuck or too small.
  frame: Duration.hours(4),
  // Webhook retries back off over about a day; an hour-old event means an endpoint is failing.
  event: Duration.hours(1),
} as const;

/** The share of API requests answered 5xx (over 5 minutes, with 20 requests or more) that raises the alarm. */
export const API_5XX_PERCENT = 5;

export interface ObservedQueue {
  readonly label: string;
  readonly kind: keyof typeof OLDEST_MESSAGE_AGE;
  readonly queue: WorkQueue;
}

export interface ObservabilityProps {
  readonly production: string;
  readonly httpApi: HttpApi;
  /** Every Lambda, labelled as ops know it (`POST /v1/jobs`, `fan-out`, ...). */
  readonly functions: readonly { readonly label: string; readonly function: FramecastFunction }[];
  readonly queues: readonly ObservedQueue[];
  readonly cluster: Cluster;
  readonly services: readonly ModelService[];
  readonly hosts: AutoScalingGroup;
  readonly alarmEmail?: string;
  /** 0: no budget. */
  readonly monthlyBudgetUsd: number;
}

/** A dashboard of the pipeline, alarms to one SNS topic, and the production's monthly budget. */
export class Observability extends Construct {
  readonly topic: Topic;
  readonly dashboard: Dashboard;
  readonly alarms: readonly Alarm[];
  readonly budget?: CfnBudget;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const stack = Stack.of(this);

    this.topic = new Topic(this, 'AlarmTopic', {
      displayName: `Framecast ${props.production} alarms`,
      enforceSSL: true,
    });
    Validations.of(this.topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm and budget notifications carry no customer data; CloudWatch alarms cannot publish to a topic under ' +
        'the AWS-managed SNS key, and a customer-managed key would cost $1 a month per production at idle.',
    });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    const alarms: Alarm[] = [];
    const alarm = (alarmId: string, description: string, options: AlarmOptions) => {
      const created = new Alarm(this, alarmId, {
        alarmDescription: `Framecast ${props.production}: ${description}`,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        ...options,
      });
      created.addAlarmAction(new SnsAction(this.topic));
      created.addOkAction(new SnsAction(this.topic));
      alarms.push(created);
      return created;
    };

    for (const { label, kind, queue } of props.queues) {
      const name = pascal(label);
      alarm(`${name}DeadLetters`, `messages in the ${label} dead-letter queue`, {
        metric: queue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          statistic: 'Maximum',
          period: Duration.minutes(1),
        }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      });
      alarm(
        `${name}OldestMessage`,
        `a ${label} message older than ${OLDEST_MESSAGE_AGE[kind].toHumanString()}`,
        {
          metric: queue.queue.metricApproximateAgeOfOldestMessage({
            statistic: 'Maximum',
            period: Duration.minutes(5),
          }),
          threshold: OLDEST_MESSAGE_AGE[kind].toSeconds(),
          comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        },
      );
    }

    const fiveMinutes = Duration.minutes(5);
    const requests = props.httpApi.metricCount({ statistic: 'Sum', period: fiveMinutes });
    const serverErrors = props.httpApi.metricServerError({ statistic: 'Sum', period: fiveMinutes });
    const clientErrors = props.httpApi.metricClientError({ statistic: 'Sum', period: fiveMinutes });
    alarm('Api5xxRate', `more than ${API_5XX_PERCENT}% of API requests answered 5xx`, {
      metric: new MathExpression({
        label: 'API 5xx %',
        // A single failed request out of three is not an incident: below 20 requests the rate reads 0.
        expression: 'IF(requests >= 20, 100 * errors / requests, 0)',
        usingMetrics: { requests, errors: serverErrors },
        period: fiveMinutes,
      }),
      threshold: API_5XX_PERCENT,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
    });

    for (const { label, function: fn } of props.functions) {
      alarm(`${pascal(label)}Errors`, `errors in the ${label} Lambda`, {
        metric: fn.function.metricErrors({ statistic: 'Sum', period: fiveMinutes }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      });
    }
    this.alarms = alarms;

    if (props.monthlyBudgetUsd > 0) {
      // Budgets filter on the production tag, which must be activated as a cost allocation tag (docs/operations.md).
      this.budget = new CfnBudget(this, 'Budget', {
        budget: {
          budgetType: 'COST',
          timeUnit: 'MONTHLY',
          budgetLimit: { amount: props.monthlyBudgetUsd, unit: 'USD' },
          costFilters: { TagKeyValue: [`user:framecast:production$${props.production}`] },
        },
        notificationsWithSubscribers: [
          { type: 'ACTUAL', threshold: 80 },
          { type: 'FORECASTED', threshold: 100 },
        ].map(({ type, threshold }) => ({
          notification: {
            notificationType: type,
            comparisonOperator: 'GREATER_THAN',
            threshold,
            thresholdType: 'PERCENTAGE',
          },
          subscribers: [{ subscriptionType: 'SNS', address: this.topic.topicArn }],
        })),
      });
      this.topic.addToResourcePolicy(
        new PolicyStatement({
          sid: 'BudgetNotifications',
          principals: [new ServicePrincipal('budgets.amazonaws.com')],
          actions: ['sns:Publish'],
          resources: [this.topic.topicArn],
          conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
        }),
      );
    }

    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    const appMetric = (metricName: string, label: string, period: Duration) =>
      new MathExpression({
        label,
        expression:
          `SUM(SEARCH('Namespace="${APP_METRICS.namespace}" MetricName="${metricName}" ` +
          `${APP_METRICS.productionDimension}="${props.production}"', 'Sum', ${period.toSeconds()}))`,
        usingMetrics: {},
        period,
      });
    const minute = Duration.minutes(1);
    const frameQueues = props.queues.filter((q) => q.kind === 'frame');
    const graph = (
      title: string,
      left: IMetric[],
      extra: Partial<ConstructorParameters<typeof GraphWidget>[0]> = {},
    ) => new GraphWidget({ title, left, width: 12, height: 6, ...extra });

    this.dashboard.addWidgets(
      graph('Jobs submitted (per 5 minutes)', [
        appMetric(APP_METRICS.jobsSubmitted, 'jobs submitted', fiveMinutes),
      ]),
      graph('Frames per minute', [
        appMetric(APP_METRICS.framesSucceeded, 'frames succeeded', minute),
        appMetric(APP_METRICS.framesFailed, 'frames failed', minute),
        ...frameQueues.map(({ label, queue }) =>
          queue.queue.metricNumberOfMessagesDeleted({
            label: `${label} chunks done`,
            statistic: 'Sum',
            period: minute,
          }),
        ),
      ]),
    );
    this.dashboard.addWidgets(
      graph(
        'Backlog: messages waiting + in flight',
        // One graph holds every queue's expression, so each needs metric ids of its own.
        props.queues.map(
          ({ label, queue }, i) =>
            new MathExpression({
              label,
              expression: `FILL(visible${i}, 0) + FILL(inflight${i}, 0)`,
              usingMetrics: {
                [`visible${i}`]: queue.queue.metricApproximateNumberOfMessagesVisible({
                  statistic: 'Maximum',
                  period: minute,
                }),
                [`inflight${i}`]: queue.queue.metricApproximateNumberOfMessagesNotVisible({
                  statistic: 'Maximum',
                  period: minute,
                }),
              },
              period: minute,
            }),
        ),
      ),
      graph(
        'Oldest message age (seconds)',
        props.queues.map(({ label, queue }) =>
          queue.queue.metricApproximateAgeOfOldestMessage({ label, statistic: 'Maximum', period: minute }),
        ),
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'GPU tasks and hosts',
        props.services.map(
          ({ model, service }) =>
            new Metric({
              namespace: 'ECS/ContainerInsights',
              metricName: 'RunningTaskCount',
              dimensionsMap: { ClusterName: props.cluster.clusterName, ServiceName: service.serviceName },
              statistic: 'Average',
              period: minute,
              label: `${model.name} tasks`,
            }),
        ),
        {
          right: [
            new Metric({
              namespace: 'AWS/AutoScaling',
              metricName: 'GroupInServiceInstances',
              dimensionsMap: { AutoScalingGroupName: props.hosts.autoScalingGroupName },
              statistic: 'Average',
              period: minute,
              label: 'GPU hosts in service',
            }),
          ],
        },
      ),
      graph('API requests and errors', [
        requests.with({ label: 'requests' }),
        clientErrors.with({ label: '4xx' }),
        serverErrors.with({ label: '5xx' }),
      ]),
    );
    this.dashboard.addWidgets(
      graph(
        'Lambda errors',
        props.functions.map(({ label, function: fn }) =>
          fn.function.metricErrors({ label, statistic: 'Sum', period: fiveMinutes }),
        ),
      ),
      graph(
        'Dead-letter queues',
        props.queues.map(({ label, queue }) =>
          queue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            label,
            statistic: 'Maximum',
            period: minute,
          }),
        ),
      ),
    );
    // A budget crossing its warning threshold (docs/operations.md, "Budgets"): the worker publishes one per
    // crossing, with Powertools' service dimension beside the production's.
    alarm('BudgetWarning', 'a tenant or the production crossed its budget warning threshold', {
      metric: new Metric({
        namespace: APP_METRICS.namespace,
        metricName: APP_METRICS.budgetWarnings,
        dimensionsMap: { [APP_METRICS.productionDimension]: props.production, service: 'framecast' },
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    this.dashboard.addWidgets(
      graph(
        'Spend (USD per hour, at the configured GPU price)',
        [
          new MathExpression({
            label: 'spend USD',
            expression:
              `SUM(SEARCH('Namespace="${APP_METRICS.namespace}" MetricName="${APP_METRICS.spendMicros}" ` +
              `${APP_METRICS.productionDimension}="${props.production}"', 'Sum', 3600)) / 1000000`,
            usingMetrics: {},
            period: Duration.hours(1),
          }),
        ],
        { right: [appMetric(APP_METRICS.budgetWarnings, 'budget warnings', Duration.hours(1))] },
      ),
    );
    this.dashboard.addWidgets(new AlarmStatusWidget({ title: 'Alarms', alarms, width: 24, height: 6 }));
  }

  /** The console address of the dashboard. */
  get dashboardUrl(): string {
    const { region } = Stack.of(this);
    return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${this.dashboard.dashboardName}`;
  }
}

type AlarmOptions = Pick<
  ConstructorParameters<typeof Alarm>[2],
  'metric' | 'threshold' | 'comparisonOperator'
>;

/** `POST /v1/jobs/{id}/cancel` → `PostV1JobsIdCancel`: a construct id from a label. */
function pascal(label: string): string {
  return label
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}
