import { Duration } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import { Alarm, ComparisonOperator, MathExpression, Metric, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { FilterPattern, MetricFilter, type ILogGroup } from 'aws-cdk-lib/aws-logs';
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
  /** An Ap21 order or return the poller newly set aside for an operator (lambdas/services/ap21-isolations.ts). */
  ap21OrdersIsolated: 'Ap21OrdersIsolated',
  /** Per poller run: Ap21 orders and returns set aside and not yet gone through (alarm `Ap21IsolationsOpen`, and the dashboard). */
  ap21IsolationsOpen: 'Ap21IsolationsOpen',
  /** Per sweep: Apace notifications stored but still not applied or checked with Apace a minute on (lambdas/services/sweeper.ts). */
  inboxRecordsWaiting: 'InboxRecordsWaiting',
  /** A refund paid at Apace's `pending` whose `processed` is overdue, still unconfirmed at a follow-up (lambdas/services/dispatcher.ts). */
  apacePayoutsUnconfirmed: 'ApacePayoutsUnconfirmed',
  /** An Apace offer the dispatcher could not deliver to the customer; the refund went to card reversal (lambdas/services/dispatcher.ts). */
  apaceOffersUndelivered: 'ApaceOffersUndelivered',
  /** A refund whose return Ap21 did not show received within AP21_RECEIPT_WAIT_DAYS, sent to manual review (lambdas/services/dispatcher.ts). */
  returnsNotReceived: 'ReturnsNotReceived',
  /** A card reversal paid whose return Ap21 shows refunded or exchanged elsewhere too (lambdas/services/return-intake.ts, dispatcher.ts). */
  refundsPaidTwice: 'RefundsPaidTwice',
  /** A card reversal in flight when Ap21 showed its return refunded or exchanged elsewhere (lambdas/services/return-intake.ts). */
  reversalsInFlightSettledElsewhere: 'ReversalsInFlightSettledElsewhere',
  /** Per sweep: how long the longest-due order in the outbox has been due, in seconds (lambdas/services/sweeper.ts). */
  outboxOverdueSeconds: 'OutboxOverdueSeconds',
  /** A Refundid RMA still `refundid_pending` past its wait, at each daily reminder (lambdas/services/dispatcher.ts). */
  refundidResultsOverdue: 'RefundidResultsOverdue',
  /** From the API's access logs (a metric filter): 4xx answers on the allowlisted paths, dimension `stage` only. */
  allowlistedRoute4xx: 'AllowlistedRoute4xx',
} as const;

const PERIOD = Duration.minutes(5);

/**
 * How long due work may stay undone before someone is called (docs/design.md §2.5, the wait table):
 * well past a dispatcher lease (120 s) and a few sweeps, far short of any wait a customer notices.
 */
export const OUTBOX_OVERDUE_SECONDS = 900;

export function customMetric(stage: string, metricName: string): Metric {
  return new Metric({ namespace: CUSTOM_METRICS.namespace, metricName, dimensionsMap: { service: SERVICE_NAME, stage }, statistic: 'Maximum', period: PERIOD });
}

export interface AlarmsProps {
  readonly config: StageConfig;
  readonly functions: ReadonlyMap<string, IFunction>;
  readonly deadLetterQueue: IQueue;
  readonly api: RestApi;
  readonly accessLogs: ILogGroup;
}

interface AlarmOptions {
  readonly description: string;
  /** Missing data is not breaching unless a silence is itself the problem. */
  readonly missingData?: TreatMissingData;
  readonly evaluationPeriods?: number;
}

/**
 * The signals that need a person (docs/design.md §6), all to one topic that e-mails the stage's address.
 * Missing data is not breaching — a quiet stage is not an incident — except for the poller's lag and
 * the outbox's overdue time: the poller and the sweeper report them on every run, so their silence
 * means Ap21 returns are not being read, or due work is re-driven by nobody.
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
    const { alarmThresholds } = config;
    this.add('Api5xxRate', api5xxPercent(props.api, alarmThresholds.api5xxMinimumCount), alarmThresholds.api5xxPercent, {
      description: `More than ${alarmThresholds.api5xxPercent}% of inbound calls got a 5xx, at least ${alarmThresholds.api5xxMinimumCount} of them: providers will retry, or give up.`,
    });
    this.add('RefundsInManualReview', customMetric(config.stage, CUSTOM_METRICS.refundsInManualReview), 1, {
      description:
        'A refund needs a person: a provider refused it permanently, its retries ran out, or it was held when created (a unit that is not returnable, a tender only an operator refunds, docs/design.md §2.7).',
    });
    this.add('Ap21OrdersIsolated', customMetric(config.stage, CUSTOM_METRICS.ap21OrdersIsolated), 1, {
      description: 'The poller set an Ap21 order or return aside for an operator (npm run ops -- manual-review): Ap21 refused it or its data is invalid.',
    });
    this.add('PollerLag', customMetric(config.stage, CUSTOM_METRICS.pollerLagSeconds), alarmThresholds.pollerLagSeconds, {
      description: `Ap21 returns are more than ${alarmThresholds.pollerLagSeconds} s behind, or the poller has reported nothing for 10 minutes (it fails, or does not run).`,
      missingData: TreatMissingData.BREACHING,
      evaluationPeriods: 2,
    });
    this.add('InboxRecordsWaiting', customMetric(config.stage, CUSTOM_METRICS.inboxRecordsWaiting), 1, {
      description:
        'Apace notifications were stored but are still not applied: Apace cannot be reached to check one that contradicts our state, or applying keeps failing (sweeper logs).',
    });
    this.add('ApacePayoutsUnconfirmed', customMetric(config.stage, CUSTOM_METRICS.apacePayoutsUnconfirmed), 1, {
      description:
        "A refund booked paid at Apace's pending has no processed after APACE_PROCESSED_WITHIN_SECONDS, and Apace's own record does not settle it: the customer may not have the money (npm run ops -- refund <id>).",
    });
    this.add('ApaceOffersUndelivered', customMetric(config.stage, CUSTOM_METRICS.apaceOffersUndelivered), 1, {
      description:
        'An Apace offer could not reach its customer (Apace refused the e-mail, or e-mail or event delivery failed every attempt): the refund went to card reversal, so the instant channel is not working (dispatcher logs).',
    });
    this.add('ReturnsNotReceived', customMetric(config.stage, CUSTOM_METRICS.returnsNotReceived), 1, {
      description:
        'A refund paid only once Ap21 shows its return received (AP21_PAY_ON_RECEIPT) waited AP21_RECEIPT_WAIT_DAYS without it and is in manual review with the reason: check the return with the warehouse (npm run ops -- manual-review).',
    });
    this.add('RefundsPaidTwice', customMetric(config.stage, CUSTOM_METRICS.refundsPaidTwice), 1, {
      description:
        'A card reversal paid a refund whose return Ap21 shows refunded at the till, by Refundid or exchanged as well: the customer was paid twice. Recover the money (the refund timeline names both, docs/design.md §2.3).',
    });
    this.add('ReversalsInFlightSettledElsewhere', customMetric(config.stage, CUSTOM_METRICS.reversalsInFlightSettledElsewhere), 1, {
      description:
        'A card reversal was already with its provider when Ap21 showed the return refunded or exchanged elsewhere: it is never submitted again, but the provider may still pay. Ask the provider to stop it now if it can (npm run ops -- refund <id>); if it pays, RefundsPaidTwice follows (docs/design.md §2.3).',
    });
    this.add('OutboxOverdue', customMetric(config.stage, CUSTOM_METRICS.outboxOverdueSeconds), OUTBOX_OVERDUE_SECONDS, {
      description: `Work in the outbox has been due for more than ${OUTBOX_OVERDUE_SECONDS} s (the dispatcher keeps failing it or cannot keep up: dispatcher logs, npm run ops -- refund <id>), or the sweeper has reported nothing for 10 minutes (it fails, or does not run): lost doorbells, expired leases, offer expiries and receipt waits are then re-driven by nobody.`,
      missingData: TreatMissingData.BREACHING,
      evaluationPeriods: 2,
    });
    this.add('Ap21IsolationsOpen', customMetric(config.stage, CUSTOM_METRICS.ap21IsolationsOpen), 1, {
      description:
        'Ap21 orders or returns set aside by the poller are still waiting for an operator (npm run ops -- manual-review, then retry-ap21): stays in alarm until every one has gone through.',
    });
    this.add('RefundidResultsOverdue', customMetric(config.stage, CUSTOM_METRICS.refundidResultsOverdue), 1, {
      description:
        'Refundid has not said for days whether it paid an RMA (the refund stays refundid_pending with the reason; a late answer still applies): check the RMA with Refundid (npm run ops -- manual-review lists it with the reason).',
    });
    const allowlisted = Object.keys(config.ipAllowlists);
    if (allowlisted.length > 0) {
      this.add('AllowlistedRoute4xx', allowlistedRoute4xx(this, config.stage, allowlisted, props.accessLogs), alarmThresholds.allowlistedRoute4xx, {
        description:
          `${alarmThresholds.allowlistedRoute4xx} or more 4xx answers in 5 minutes on the source-allowlisted paths (${allowlisted.join(', ')}): ` +
          'mostly 403s from the resource policy, which no Lambda sees. A provider may have changed its address, or an allowlist still holds a placeholder.',
      });
    }
  }

  private add(id: string, metric: IMetric, threshold: number, options: AlarmOptions): void {
    const alarm = new Alarm(this, id, {
      alarmDescription: options.description,
      metric,
      threshold,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: options.missingData ?? TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    alarm.addOkAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}

/** The share of inbound calls answered 5xx, counted only once at least `minimumCount` were (0 below it). */
export function api5xxPercent(api: RestApi, minimumCount = 1): MathExpression {
  return new MathExpression({
    label: '5xx %',
    expression: `IF(errors >= ${minimumCount}, 100 * errors / requests, 0)`,
    usingMetrics: { errors: api.metricServerError({ period: PERIOD, statistic: 'Sum' }), requests: api.metricCount({ period: PERIOD, statistic: 'Sum' }) },
    period: PERIOD,
  });
}

/**
 * 4xx answers on the paths a source allowlist guards, counted from the access logs: a 403 from the
 * resource policy is answered by API Gateway itself, so no function's metrics ever see it.
 */
function allowlistedRoute4xx(scope: Construct, stage: string, paths: readonly string[], accessLogs: ILogGroup): Metric {
  const onPath = paths.map((path) => `$.resourcePath = "${path}"`).join(' || ');
  new MetricFilter(scope, 'AllowlistedRoute4xxFilter', {
    logGroup: accessLogs,
    filterPattern: FilterPattern.literal(`{ ($.status = "4*") && (${onPath}) }`),
    metricNamespace: CUSTOM_METRICS.namespace,
    metricName: CUSTOM_METRICS.allowlistedRoute4xx,
    metricValue: '1',
    dimensions: { stage: '$.stage' },
  });
  return new Metric({
    namespace: CUSTOM_METRICS.namespace,
    metricName: CUSTOM_METRICS.allowlistedRoute4xx,
    dimensionsMap: { stage },
    statistic: 'Sum',
    period: PERIOD,
  });
}
