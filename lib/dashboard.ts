import { Duration } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import { AlarmStatusWidget, Dashboard as CloudWatchDashboard, GraphWidget, Metric, type IAlarm } from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CUSTOM_METRICS, api5xxPercent, customMetric } from './alarms';

export interface DashboardProps {
  readonly stage: string;
  readonly api: RestApi;
  readonly functions: ReadonlyMap<string, IFunction>;
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
  readonly alarms: readonly IAlarm[];
}

const PERIOD = Duration.minutes(5);

/** One page per stage: is anything alarming, is traffic flowing, is work piling up. */
export class Dashboard extends Construct {
  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const functions = [...props.functions.entries()];
    const width = 8;
    new CloudWatchDashboard(this, 'Dashboard', {
      dashboardName: `refund-relay-${props.stage}`,
      widgets: [
        [new AlarmStatusWidget({ title: 'Alarms', alarms: [...props.alarms], width: 24 })],
        [
          new GraphWidget({
            title: 'Inbound calls',
            width,
            left: [props.api.metricCount({ period: PERIOD, statistic: 'Sum', label: 'requests' })],
            right: [
              api5xxPercent(props.api),
              props.api.metricClientError({ period: PERIOD, statistic: 'Sum', label: '4xx' }),
              new Metric({
                namespace: CUSTOM_METRICS.namespace,
                metricName: CUSTOM_METRICS.allowlistedRoute4xx,
                dimensionsMap: { stage: props.stage },
                statistic: 'Sum',
                period: PERIOD,
                label: '4xx on allowlisted paths',
              }),
            ],
          }),
          new GraphWidget({ title: 'Inbound latency p99 (ms)', width, left: [props.api.metricLatency({ period: PERIOD, statistic: 'p99' })] }),
          new GraphWidget({
            title: 'Dispatch queue',
            width,
            left: [
              props.queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum', label: 'waiting' }),
              props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum', label: 'dead letters' }),
            ],
            right: [props.queue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum', label: 'oldest (s)' })],
          }),
        ],
        [
          new GraphWidget({ title: 'Function errors', width, left: functions.map(([name, fn]) => fn.metricErrors({ period: PERIOD, label: name })) }),
          new GraphWidget({
            title: 'Function duration p99 (ms)',
            width,
            left: functions.map(([name, fn]) => fn.metricDuration({ period: PERIOD, statistic: 'p99', label: name })),
          }),
          new GraphWidget({
            title: 'Refund health',
            width,
            left: [
              customMetric(props.stage, CUSTOM_METRICS.refundsInManualReview),
              customMetric(props.stage, CUSTOM_METRICS.ap21OrdersIsolated),
              customMetric(props.stage, CUSTOM_METRICS.ap21IsolationsOpen),
              customMetric(props.stage, CUSTOM_METRICS.apaceOffersUndelivered),
            ],
            right: [customMetric(props.stage, CUSTOM_METRICS.pollerLagSeconds)],
          }),
        ],
      ],
    });
  }
}
