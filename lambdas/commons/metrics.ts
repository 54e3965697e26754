/**
 * Custom metrics in CloudWatch embedded metric format: one JSON line on stdout that Lambda's log
 * pipeline turns into a metric, with no client and no call. The namespace and dimensions are the
 * ones the stack's alarms watch (lib/alarms.ts). Outside Lambda nothing is written.
 */
export type MetricName =
  | 'RefundsInManualReview'
  /** A card reversal paid whose return Ap21 shows refunded or exchanged elsewhere too: money to recover (docs/design.md §2.3). */
  | 'RefundsPaidTwice'
  /** A card reversal in flight whose return Ap21 shows settled elsewhere: marked, never submitted again (docs/design.md §2.3). */
  | 'ReversalsInFlightSettledElsewhere'
  /** Emitted by every poller run, a failed one included: how far behind the watermark is. */
  | 'PollerLagSeconds'
  /** An Ap21 order or return newly set aside for an operator (with RefundsInManualReview). */
  | 'Ap21OrdersIsolated'
  /** Per poller run: Ap21 orders and returns set aside and not yet gone through. */
  | 'Ap21IsolationsOpen'
  /** Per sweep: Apace notifications stored and still not applied or checked a minute on. */
  | 'InboxRecordsWaiting'
  /** A refund paid at Apace's `pending` whose `processed` is overdue, found so again at a follow-up. */
  | 'ApacePayoutsUnconfirmed'
  /** An Apace offer that could not reach the customer: the refund went to card reversal instead (docs/design.md §2.6). */
  | 'ApaceOffersUndelivered'
  /** A refund whose return Ap21 did not show received within the stage's wait: sent to manual review (docs/design.md §2.9). */
  | 'ReturnsNotReceived'
  /** Per sweep: how long the longest-due order in the outbox has been due (0: none is); its silence means no sweeper runs. */
  | 'OutboxOverdueSeconds'
  /** A Refundid RMA whose outcome Refundid has not sent within its wait, noted on the refund; again at each reminder. */
  | 'RefundidResultsOverdue';

export function emitMetric(name: MetricName, value: number, unit: 'Count' | 'Seconds' = 'Count', env: NodeJS.ProcessEnv = process.env): void {
  if (!env.AWS_LAMBDA_FUNCTION_NAME) return;
  const record = {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [{ Namespace: 'RefundRelay', Dimensions: [['service', 'stage']], Metrics: [{ Name: name, Unit: unit }] }],
    },
    service: env.POWERTOOLS_SERVICE_NAME ?? 'refund-relay',
    stage: env.STAGE ?? 'local',
    [name]: value,
  };
  process.stdout.write(`${JSON.stringify(record)}\n`);
}
