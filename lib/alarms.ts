import { Duration } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import { Alarm, ComparisonOperator, MathExpression, Metric, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { SERVICE_NAME } from './functions';
import type { StageConfig } from './stage-config';

/**
 * The metrics the runtime emits in embedded metric format (Powertools Metrics). Alarms match a
 * metric only with all its dimensions: Powertools adds `service` (POWERTOOLS_SERVICE_NAME), and
 * the emitter adds `stage` (STAGE) so stages sharing an account keep their numbers apart.
 */
export const CUSTOM_METRICS = {
  namespace: 'RefundRelay',
  refundsInManualReview: 'RefundsInManualReview',
  pollerLagSeconds: 'PollerLagSeconds',
} as const;

const PERIOD = Duration.minutes(5);

export function customMetric(stage: string, metricName: string): Metric {
  return new Metric({ namespace: CUSTOM_METRICS.namespace, metricName, dimensionsMap: { service: SERVICE_NAME, stage }, statistic: 'Maximum', period: PERIOD });
}

export interface AlarmsProps {
  readonly config: StageConfig;
  readonly functions: ReadonlyMap<string, IFunction>;
  readonly deadLetterQueue: IQueue;
  readonly api: RestApi;
}

/**
 * The signals that need a person (docs/design.md §6), all to one topic that e-mails the stage's address.
 * Missing data is not breaching: a quiet stage, or a metric whose emitter has not shipped yet, is
 * not an incident.
 */
export class Alarms extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    const { config } = props;
    this.topic = new Topic(this, 'Topic', { displayName: `refund-relay ${config.stage} alarms`, enforceSSL: true });
    this.topic.addSubscription(new EmailSubscription(config.alarmEmail));

    this.add('DeadLetters', props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }), 1, {
      description: 'Dispatch work failed five times and sits in the DLQ: inspect, fix, then redrive.',
    });
    for (const [name, fn] of props.functions) {
      this.add(`${name}-errors`, fn.metricErrors({ period: PERIOD }), 1, { description: `${name} failed (an invocation threw or timed out).` });
    }
    this.add('Api5xxRate', api5xxPercent(props.api), config.alarmThresholds.api5xxPercent, {
      description: `More than ${config.alarmThresholds.api5xxPercent}% of inbound calls got a 5xx: providers will retry, or give up.`,
    });
    this.add('RefundsInManualReview', customMetric(config.stage, CUSTOM_METRICS.refundsInManualReview), 1, {
      description: 'A refund needs a person: a provider refused it permanently or its retries ran out.',
    });
    this.add('PollerLag', customMetric(config.stage, CUSTOM_METRICS.pollerLagSeconds), config.alarmThresholds.pollerLagSeconds, {
      description: `Ap21 returns are more than ${config.alarmThresholds.pollerLagSeconds} s behind.`,
    });
  }

  private add(id: string, metric: IMetric, threshold: number, { description }: { description: string }): void {
    const alarm = new Alarm(this, id, {
      alarmDescription: description,
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    alarm.addOkAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}

export function api5xxPercent(api: RestApi): MathExpression {
  return new MathExpression({
    label: '5xx %',
    expression: 'IF(requests > 0, 100 * errors / requests, 0)',
    usingMetrics: { errors: api.metricServerError({ period: PERIOD, statistic: 'Sum' }), requests: api.metricCount({ period: PERIOD, statistic: 'Sum' }) },
    period: PERIOD,
  });
}
