import { formatDecimal, type Money } from '../../lambdas/domain/money';
import type { Refund } from '../../lambdas/domain/refund';

export const money = (amount: Money): string => `${amount.currency} ${formatDecimal(amount)}`;

export const lineClaims = (refund: Pick<Refund, 'lines'>): string =>
  Object.entries(refund.lines)
    .map(([lineId, units]) => `${units}× line ${lineId}`)
    .join(', ');

/** Left-aligned columns, two spaces apart; the last column is never padded. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** One line of a possibly multi-line, possibly long text (a reason, a provider detail). */
export function oneLine(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function refundSummary(refund: Refund): string[] {
  const stamps = (['createdAt', 'updatedAt', 'paidAt', 'confirmedAt', 'nextAttemptAt', 'offerExpiresAt', 'lastVerifiedAt'] as const)
    .filter((field) => refund[field])
    .map((field) => [field, String(refund[field])]);
  return table([
    ['state', `${refund.state} (channel ${refund.channel})`],
    ['amount', `${money(refund.amount)} from payment ${refund.paymentId}`],
    ['lines', lineClaims(refund)],
    ['source', `${refund.source.kind} ${refund.source.ref}`],
    ['attempts', String(refund.attempts)],
    ...(refund.reason ? [['reason', oneLine(refund.reason, 400)]] : []),
    ...(refund.settledBy ? [['settled by', oneLine(refund.settledBy, 400)]] : []),
    ...(refund.verifications ? [['verifications', String(refund.verifications)]] : []),
    ...stamps,
    ...Object.entries(refund.refs).map(([name, value]) => [`ref ${name}`, value]),
  ]);
}
