import { describe, expect, it } from 'vitest';
import { APP_METRICS } from '../../functions/shared/metrics.ts';
import { ROUTES } from '../../functions/shared/routes.ts';
import { API_5XX_PERCENT, OLDEST_MESSAGE_AGE } from '../../lib/observability.ts';
import { idAt, propsOf, resourcesOf, synthesize } from './synth.ts';

const { template, stack } = synthesize('demo', {
  alarmEmail: 'render-ops@studio.example',
  monthlyBudgetUsd: 2500,
});
const topic = idAt(stack, 'Observability/AlarmTopic');
const alarms = Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm')).map(
  (a) => a.Properties as AlarmProps,
);
const opsAlarms = alarms.filter((a) => JSON.stringify(a.AlarmActions).includes(topic));
type AlarmProps = {
  MetricName?: string;
  Dimensions?: { Name: string; Value: unknown }[];
  Threshold: number;
  ComparisonOperator: string;
  AlarmActions: unknown[];
  OKActions?: unknown[];
  Metrics?: { Expression?: string; MetricStat?: { Metric: { MetricName: string } } }[];
};
const on = (metricName: string, dimension: unknown) =>
  opsAlarms.filter(
    (a) => a.MetricName === metricName && JSON.stringify(a.Dimensions).includes(JSON.stringify(dimension)),
  );
const queuePaths = { plan: 'Queues/Plan', frame: 'Queues/Frames-reference', event: 'Queues/Event' } as const;

/** The dashboard body, with the tokens CloudFormation fills in left as placeholders. */
const dashboardBody = (): { widgets: { properties: { title?: string; metrics?: unknown[] } }[] } => {
  const [dashboard] = Object.values(resourcesOf(template, 'AWS::CloudWatch::Dashboard'));
  const body = dashboard?.Properties?.DashboardBody as { 'Fn::Join': [string, unknown[]] };
  return JSON.parse(body['Fn::Join'][1].map((p) => (typeof p === 'string' ? p : 'TOKEN')).join(''));
};

describe('Observability', () => {
  it('draws a dashboard of jobs, frames, backlog, message age, GPU tasks, API errors, Lambda errors and DLQs', () => {
    const titles = dashboardBody().widgets.map((w) => w.properties.title);
    expect(titles).toEqual([
      'Jobs submitted (per 5 minutes)',
      'Frames per minute',
      'Backlog: messages waiting + in flight',
      'Oldest message age (seconds)',
      'GPU tasks and hosts',
      'API requests and errors',
      'Lambda errors',
      'Dead-letter queues',
      'Spend (USD per hour, at the configured GPU price)',
      'Alarms',
    ]);
  });

  it('charts the application metrics of this production, whatever other dimensions they carry', () => {
    const text = JSON.stringify(dashboardBody());
    for (const name of [APP_METRICS.jobsSubmitted, APP_METRICS.framesSucceeded, APP_METRICS.framesFailed]) {
      expect(text).toContain(
        `SEARCH('Namespace=\\"Framecast\\" MetricName=\\"${name}\\" production=\\"demo\\"'`,
      );
    }
    expect(text).toContain('RunningTaskCount');
    expect(text).toContain('GroupInServiceInstances');
  });

  it.each(Object.entries(queuePaths))('alarms as soon as the %s DLQ holds a message', (_, path) => {
    const alarm = on('ApproximateNumberOfMessagesVisible', {
      'Fn::GetAtt': [idAt(stack, `${path}/DeadLetters`), 'QueueName'],
    });
    expect(alarm).toHaveLength(1);
    expect(alarm[0]).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
  });

  it.each(Object.entries(queuePaths))('alarms when the oldest %s message gets too old', (kind, path) => {
    const alarm = on('ApproximateAgeOfOldestMessage', {
      'Fn::GetAtt': [idAt(stack, `${path}/Queue`), 'QueueName'],
    });
    expect(alarm).toHaveLength(1);
    expect(alarm[0]?.Threshold).toBe(OLDEST_MESSAGE_AGE[kind as keyof typeof OLDEST_MESSAGE_AGE].toSeconds());
  });

  it('alarms on the rate of API 5xx answers', () => {
    const rate = opsAlarms.filter((a) => a.Metrics?.some((m) => m.MetricStat?.Metric.MetricName === '5xx'));
    expect(rate).toHaveLength(1);
    expect(rate[0]?.Metrics?.map((m) => m.MetricStat?.Metric.MetricName ?? m.Expression)).toEqual(
      expect.arrayContaining(['Count', '5xx', 'IF(requests >= 20, 100 * errors / requests, 0)']),
    );
    expect(rate[0]?.Threshold).toBe(API_5XX_PERCENT);
  });

  it('alarms on the errors of every Framecast Lambda', () => {
    const ours = Object.entries(resourcesOf(template, 'AWS::Lambda::Function')).filter(([, f]) =>
      String(f.Properties?.Description).startsWith('Framecast'),
    );
    expect(ours).toHaveLength(ROUTES.length + 3);
    for (const [id] of ours) {
      expect(on('Errors', { Name: 'FunctionName', Value: { Ref: id } })).toHaveLength(1);
    }
  });

  it("charts the production's spend and alarms when a budget crosses its warning threshold", () => {
    expect(JSON.stringify(dashboardBody())).toContain(`MetricName=\\"${APP_METRICS.spendMicros}\\"`);
    const warning = opsAlarms.filter((a) => a.MetricName === APP_METRICS.budgetWarnings);
    expect(warning).toHaveLength(1);
    expect(warning[0]).toMatchObject({ Namespace: 'Framecast', Threshold: 0 });
  });

  it('sends every alarm and its recovery to the SNS topic', () => {
    // Two alarms (dead letters, oldest message) for each of the plan, frame (three priority bands) and event
    // queues, and the budget warning (docs/operations.md, "Budgets").
    expect(opsAlarms).toHaveLength(5 * 2 + 1 + ROUTES.length + 3 + 1);
    for (const alarm of opsAlarms) {
      expect(alarm.AlarmActions).toEqual([{ Ref: topic }]);
      expect(alarm.OKActions).toEqual([{ Ref: topic }]);
    }
  });

  it('accepts only TLS on the topic, lets AWS Budgets publish to it and subscribes the ops address', () => {
    const [policy] = Object.values(resourcesOf(template, 'AWS::SNS::TopicPolicy'));
    const statements = (
      propsOf(policy).PolicyDocument as {
        Statement: { Effect: string; Principal?: unknown; Condition?: unknown }[];
      }
    ).Statement;
    expect(statements).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        expect.objectContaining({ Effect: 'Allow', Principal: { Service: 'budgets.amazonaws.com' } }),
      ]),
    );
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'render-ops@studio.example',
      TopicArn: { Ref: topic },
    });
  });

  it('budgets the production by its tag and warns at 80% spent and at 100% forecast', () => {
    template.hasResourceProperties('AWS::Budgets::Budget', {
      Budget: {
        BudgetType: 'COST',
        TimeUnit: 'MONTHLY',
        BudgetLimit: { Amount: 2500, Unit: 'USD' },
        CostFilters: { TagKeyValue: ['user:framecast:production$demo'] },
      },
      NotificationsWithSubscribers: [
        {
          Notification: { NotificationType: 'ACTUAL', Threshold: 80 },
          Subscribers: [{ SubscriptionType: 'SNS', Address: { Ref: topic } }],
        },
        {
          Notification: { NotificationType: 'FORECASTED', Threshold: 100 },
          Subscribers: [{ SubscriptionType: 'SNS', Address: { Ref: topic } }],
        },
      ],
    });
  });
});
