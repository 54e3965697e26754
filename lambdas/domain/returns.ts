import { InvalidRefundError, UnitsUnavailableError } from './errors';
import { paymentPreference } from '../providers/registry';
import type { Money } from './money';
import { own, unitsValue, type Order } from './order';
import type { Refund } from './refund';

/**
 * How returned units become a refund claim: which order lines they come off, what they are worth,
 * and which payment the money goes back to. Pure rules, the same for every source of returns.
 */

/** Ap21 line and payment ids are numbers: compare them as numbers, other ids as text. */
export function compareIds(a: string, b: string): number {
  const numeric = /^\d+$/;
  if (numeric.test(a) && numeric.test(b)) return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Takes `units` per SKU off the order lines carrying that SKU. A SKU on several lines is taken
 * from returnable lines before lines that are not (`notReturnable`, or marked so on the ledger,
 * docs/design.md §2.7), then from the lowest line id first, each line giving what it still has
 * available (neither refunded nor in flight), so the same ledger always gives the same answer.
 */
export function allocateReturnedUnits(
  order: Pick<Order, 'lines'>,
  unitsBySku: Readonly<Record<string, number>>,
  notReturnable: ReadonlySet<string> = new Set(),
): Record<string, number> {
  const blocked = (lineId: string, line: Order['lines'][string]) => (notReturnable.has(lineId) || line.nonReturnable !== undefined ? 1 : 0);
  const claim: Record<string, number> = {};
  for (const sku of Object.keys(unitsBySku).sort(compareIds)) {
    const wanted = own(unitsBySku, sku)!;
    if (!Number.isSafeInteger(wanted) || wanted < 1) throw new InvalidRefundError(`SKU ${sku}: returned units must be a positive whole number`);
    const lines = Object.entries(order.lines)
      .filter(([, line]) => line.sku === sku)
      .sort(([a, lineA], [b, lineB]) => blocked(a, lineA) - blocked(b, lineB) || compareIds(a, b));
    if (lines.length === 0) throw new InvalidRefundError(`order has no line with SKU ${sku}`);
    let remaining = wanted;
    for (const [lineId, line] of lines) {
      const taken = Math.min(remaining, line.available);
      if (taken > 0) claim[lineId] = taken;
      remaining -= taken;
    }
    if (remaining > 0) {
      const free = wanted - remaining;
      throw new UnitsUnavailableError(`SKU ${sku}: ${wanted} unit(s) returned, ${free} not yet refunded or in flight`);
    }
  }
  return claim;
}

/**
 * What the claimed units are worth: per line `unitsValue` (its value times units over purchased,
 * rounded down, integer arithmetic), the rule Refundid RMAs are priced by too. A line returned whole refunds exactly its value; returned in
 * parts, the parts never add up to more than the line's value (each may be up to one minor unit
 * short), whatever order they come in and whichever of them are later released.
 */
export function proportionalValue(order: Pick<Order, 'lines' | 'currency'>, claim: Readonly<Record<string, number>>): Money {
  let total = 0;
  for (const [lineId, units] of Object.entries(claim)) {
    const line = own(order.lines, lineId);
    if (!line) throw new InvalidRefundError(`order has no line ${lineId}`);
    if (units > line.purchased) throw new InvalidRefundError(`line ${lineId}: only ${line.purchased} unit(s) were purchased`);
    total += unitsValue(line, units);
  }
  return { minor: total, currency: order.currency };
}

/**
 * The payment a refund goes back to: the one named by `transactionId` when it can cover the
 * amount (the payment Ap21 itself refunded), otherwise by its provider's payment preference
 * (lambdas/providers/registry.ts: card-reversal connectors first), then the most left to refund, then the lowest id. Undefined when no single payment can cover it.
 */
export function choosePayment(order: Pick<Order, 'payments'>, amountMinor: number, transactionId?: string): string | undefined {
  const covering = Object.entries(order.payments).filter(([, payment]) => payment.availableMinor >= amountMinor);
  const named = transactionId === undefined ? undefined : covering.find(([, payment]) => payment.transactionId === transactionId);
  if (named) return named[0];
  covering.sort(
    ([idA, a], [idB, b]) => paymentPreference(a.provider) - paymentPreference(b.provider) || b.availableMinor - a.availableMinor || compareIds(idA, idB),
  );
  return covering[0]?.[0];
}

/** Units per SKU of a refund's lines, as the order knows them (lines without a SKU are keyed by line id). */
function unitsBySkuOf(order: Pick<Order, 'lines'>, claim: Readonly<Record<string, number>>): Record<string, number> {
  const bySku: Record<string, number> = {};
  for (const [lineId, units] of Object.entries(claim)) {
    const sku = own(order.lines, lineId)?.sku ?? `line:${lineId}`;
    bySku[sku] = (bySku[sku] ?? 0) + units;
  }
  return bySku;
}

function sameUnits(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => own(a, key) === own(b, key));
}

/**
 * The Refundid RMA refund an Ap21 return refunded by Refundid stands for: a Refundid RMA on the
 * same order, not yet tied to an Ap21 return, pending or paid, for the same units per SKU. One
 * whose Refundid id (or another ref) is the Refundid payment's Stan or Reference wins (whether
 * Refundid writes its id there is UNCONFIRMED); otherwise the oldest, then the lowest id.
 */
export function matchingRefundidRma(
  order: Pick<Order, 'lines' | 'refunds'>,
  unitsBySku: Readonly<Record<string, number>>,
  paymentReferences: readonly string[],
  linkRef: string,
): Refund | undefined {
  const candidates = Object.values(order.refunds).filter(
    (refund) =>
      refund.channel === 'refundid' &&
      refund.source.kind === 'refundid_rma' &&
      (refund.state === 'refundid_pending' || refund.state === 'paid') &&
      refund.refs[linkRef] === undefined &&
      sameUnits(unitsBySkuOf(order, refund.lines), unitsBySku),
  );
  const named = candidates.find((refund) => [refund.source.ref, ...Object.values(refund.refs)].some((value) => paymentReferences.includes(value)));
  if (named) return named;
  return candidates.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || compareIds(a.id, b.id))[0];
}
