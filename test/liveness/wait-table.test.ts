import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import { HOLDING_STATES, refundDueAt, type Refund, type RefundState } from '../../lambdas/domain/refund';
import { CUSTOM_METRICS } from '../../lib/alarms';
import { STAGES } from '../../lib/stage-config';
import { logicalId, resourcesOfType, synthesizeStage, type SynthesizedStage } from '../cdk/support';

/**
 * The wait table of docs/design.md §2.5 cannot go stale: the refund states come from the domain
 * (`HOLDING_STATES`), the metrics from the code that emits them, the alarms from the synthesized
 * stack. Every way a refund can wait has a bound, a metric and an alarm on that metric; no metric is
 * emitted without an alarm and no alarm watches a metric nobody emits.
 */
const ROOT = join(__dirname, '..', '..');

/** What waits besides a refund's state (docs/design.md §2.5): each needs its own row. */
const OTHER_WAITS = ['apace-processed', 'inbox', 'ap21-push', 'ap21-set-aside', 'poller-watermark', 'outbox', 'doorbell'] as const;

interface WaitRow {
  readonly key: string;
  readonly bound: string;
  readonly actor: string;
  readonly metrics: string[];
  readonly alarms: string[];
  /** The thresholds the row states, e.g. "`OutboxOverdue` (≥ 900 s", by alarm. */
  readonly thresholds: ReadonlyMap<string, number>;
}

const ticked = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]!);

/** The rows of the table that follows "**The wait table.**" in docs/design.md. */
function waitTable(): WaitRow[] {
  const design = readFileSync(join(ROOT, 'docs', 'design.md'), 'utf8');
  const start = design.indexOf('**The wait table.**');
  if (start < 0) throw new Error('docs/design.md has no "**The wait table.**"');
  const lines = design.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const rows: WaitRow[] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    const [wait = '', bound = '', actor = '', metric = '', alarm = ''] = line
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim());
    // A metric cell names metrics; an alarm cell names alarms and, in words, their thresholds.
    rows.push({
      key: ticked(wait)[0] ?? wait,
      bound,
      actor,
      metrics: ticked(metric),
      alarms: ticked(alarm).filter((name) => /^[A-Z]\w+$/.test(name)),
      thresholds: new Map([...alarm.matchAll(/`(\w+)` \(≥ (\d+)/g)].map((match) => [match[1]!, Number(match[2])])),
    });
  }
  return rows;
}

/** Metric names some shipped code emits (`emitMetric('Name', …)`), by scanning lambdas/. */
function emittedMetrics(): Set<string> {
  const names = new Set<string>();
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts')) for (const match of readFileSync(path, 'utf8').matchAll(/emitMetric\(\s*'(\w+)'/g)) names.add(match[1]!);
    }
  };
  visit(join(ROOT, 'lambdas'));
  return names;
}

interface WatchingAlarm {
  readonly id: string;
  readonly namespace: string | undefined;
  readonly metricName: string | undefined;
  readonly threshold: number | undefined;
}

/** Every alarm of the stage's stack by its construct id (`lib/alarms.ts`), with the metric it watches. */
function stackAlarms(synthesized: SynthesizedStage): WatchingAlarm[] {
  return synthesized.stack.node
    .findAll()
    .filter((construct): construct is Alarm => construct instanceof Alarm)
    .map((alarm) => {
      const properties = synthesized.resources[logicalId(alarm)]!.Properties ?? {};
      return {
        id: alarm.node.id,
        namespace: properties.Namespace as string | undefined,
        metricName: properties.MetricName as string | undefined,
        threshold: properties.Threshold as number | undefined,
      };
    });
}

/** A refund in `state` as the code leaves it when it waits there: its due time recorded where the state has one. */
function waitingIn(state: RefundState): Refund {
  const at = '2026-01-01T00:00:00.000Z';
  return {
    id: 'r1',
    orderId: 'o1',
    state,
    channel: state === 'refundid_pending' ? 'refundid' : state.startsWith('offer') ? 'apace' : 'reversal',
    source: { kind: 'ap21_return', ref: 'RET-1' },
    createdAt: at,
    updatedAt: at,
    offerExpiresAt: state.startsWith('offer') ? '2026-01-11T00:00:00.000Z' : null,
    attempts: 0,
    nextAttemptAt: '2026-01-02T00:00:00.000Z',
    refs: {},
    lines: { '1': 1 },
    paymentId: 'p1',
    amount: { minor: 1000, currency: 'AUD' },
  };
}

/** Everything wrong with the table against the domain, the code and the stack; empty when it holds. */
function waitTableProblems(
  rows: readonly WaitRow[],
  emitted: ReadonlySet<string>,
  alarms: readonly WatchingAlarm[],
  filterMetrics: ReadonlySet<string>,
): string[] {
  const problems: string[] = [];
  const byKey = new Map(rows.map((row) => [row.key, row]));
  const required = [...HOLDING_STATES, ...OTHER_WAITS] as string[];
  for (const key of required) if (!byKey.has(key)) problems.push(`${key}: no row in the wait table`);
  for (const row of rows) if (!required.includes(row.key)) problems.push(`${row.key}: a row for no state or wait the code has`);
  const watching = (metric: string) => alarms.filter((alarm) => alarm.metricName === metric);
  const produced = (metric: string) =>
    emitted.has(metric) || filterMetrics.has(metric) || watching(metric).some((alarm) => alarm.namespace?.startsWith('AWS/'));

  for (const row of rows) {
    if (!row.bound) problems.push(`${row.key}: no bound`);
    if (!row.actor) problems.push(`${row.key}: nobody acts when its bound runs out`);
    if (row.metrics.length === 0) problems.push(`${row.key}: no metric`);
    if (row.alarms.length === 0) problems.push(`${row.key}: no alarm`);
    if ((HOLDING_STATES as ReadonlySet<string>).has(row.key)) {
      const state = row.key as RefundState;
      const due = refundDueAt(waitingIn(state));
      if (state === 'manual_review') {
        if (!/operator/.test(row.actor)) problems.push(`${state}: no due time, so its row must hand it to the operator`);
      } else if (due === undefined) problems.push(`${state}: no due time the sweeper finds (refundDueAt), so nothing ends the wait`);
    }
    for (const metric of row.metrics) {
      if (!produced(metric)) problems.push(`${row.key}: metric ${metric} is emitted by no code`);
      if (watching(metric).length === 0) problems.push(`${row.key}: metric ${metric} has no alarm in the stack`);
    }
    for (const name of row.alarms) {
      const alarm = alarms.find((candidate) => candidate.id === name);
      if (!alarm) problems.push(`${row.key}: alarm ${name} is not in the synthesized stack`);
      else if (!row.metrics.includes(alarm.metricName ?? '')) problems.push(`${row.key}: alarm ${name} watches ${alarm.metricName}, not a metric of its row`);
      const stated = row.thresholds.get(name);
      if (alarm && stated !== undefined && stated !== alarm.threshold) problems.push(`${row.key}: alarm ${name} breaches at ${alarm.threshold}, not ${stated}`);
    }
  }
  for (const metric of emitted) if (watching(metric).length === 0) problems.push(`metric ${metric} is emitted but no alarm watches it`);
  for (const alarm of alarms) {
    if (alarm.namespace !== CUSTOM_METRICS.namespace) continue;
    if (!produced(alarm.metricName ?? '')) problems.push(`alarm ${alarm.id} watches ${alarm.metricName}, which no code emits`);
  }
  return problems;
}

describe('the wait table (docs/design.md §2.5)', () => {
  const synthesized = synthesizeStage(STAGES.prod);
  const alarms = stackAlarms(synthesized);
  const filterMetrics = new Set(
    resourcesOfType(synthesized.resources, 'AWS::Logs::MetricFilter').flatMap(([, filter]) =>
      (filter.Properties?.MetricTransformations as { MetricName: string }[]).map((transformation) => transformation.MetricName),
    ),
  );
  const rows = waitTable();

  it('gives every holding state of the domain and every other wait a bound, a metric the code emits and an alarm the stack has on it', () => {
    expect(rows.length).toBeGreaterThanOrEqual(HOLDING_STATES.size + OTHER_WAITS.length);
    expect(waitTableProblems(rows, emittedMetrics(), alarms, filterMetrics)).toEqual([]);
  });

  it('names what is missing: a dropped alarm, a state without a row, a metric nobody emits, a state the sweeper never finds', () => {
    const emitted = emittedMetrics();
    expect(
      waitTableProblems(
        rows,
        emitted,
        alarms.filter((alarm) => alarm.id !== 'ReturnsNotReceived'),
        filterMetrics,
      ),
    ).toEqual(
      expect.arrayContaining([
        'awaiting_receipt: metric ReturnsNotReceived has no alarm in the stack',
        'awaiting_receipt: alarm ReturnsNotReceived is not in the synthesized stack',
        'metric ReturnsNotReceived is emitted but no alarm watches it',
      ]),
    );
    expect(
      waitTableProblems(
        rows.filter((row) => row.key !== 'offered'),
        emitted,
        alarms,
        filterMetrics,
      ),
    ).toEqual(['offered: no row in the wait table']);
    const silent = new Set([...emitted].filter((metric) => metric !== 'InboxRecordsWaiting'));
    expect(waitTableProblems(rows, silent, alarms, filterMetrics)).toEqual([
      'inbox: metric InboxRecordsWaiting is emitted by no code',
      'alarm InboxRecordsWaiting watches InboxRecordsWaiting, which no code emits',
    ]);
    const misquoted = rows.map((row) => (row.key === 'outbox' ? { ...row, thresholds: new Map([['OutboxOverdue', 600]]) } : row));
    expect(waitTableProblems(misquoted, emitted, alarms, filterMetrics)).toEqual(['outbox: alarm OutboxOverdue breaches at 900, not 600']);
    const noDueTime = rows.map((row) => (row.key === 'refundid_pending' ? { ...row, key: 'manual_review', actor: 'the dispatcher' } : row));
    expect(waitTableProblems(noDueTime, emitted, alarms, filterMetrics)).toEqual(
      expect.arrayContaining(['refundid_pending: no row in the wait table', 'manual_review: no due time, so its row must hand it to the operator']),
    );
  });
});
