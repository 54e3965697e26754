import type { Ap21Order } from '../providers/ap21/schemas';
import { isRefundidPayment } from '../providers/ap21/statuses';

/**
 * When the poller reads an order's returns (AP21_POLL_RETURNS_READ, docs/design.md §2.4):
 * - `on_sign` (default): only where the changed-orders feed shows a sign of a return. The feed
 *   carries each order whole (lines, payments, line status; docs/providers.md §3, Retail API guide
 *   pp.126–130), so opening a ledger needs no further read, and a return shows in the feed itself.
 * - `always`: every changed order's returns are read (one more call per order), for installations
 *   whose feed shows no sign of returns.
 */
export const RETURNS_READ_MODES = ['on_sign', 'always'] as const;

export type ReturnsReadMode = (typeof RETURNS_READ_MODES)[number];

/**
 * Line statuses that say nothing about a return. `Processing` is the one the guide shows
 * (docs/providers.md §3, guide pp.127–129); the others are our ASSUMPTION of Ap21's progress states.
 * Any other status — `Returned`, `Refunded`, `Exchanged` or one we do not know — is a sign: when in
 * doubt the returns are read, because a missed return is a lost refund.
 */
const NO_RETURN_STATUSES: ReadonlySet<string> = new Set([
  'processing',
  'pending',
  'on hold',
  'backordered',
  'back ordered',
  'picked',
  'packed',
  'shipped',
  'despatched',
  'dispatched',
  'delivered',
  'invoiced',
  'complete',
  'completed',
  'cancelled',
  'canceled',
]);

/**
 * An order's signs of a return, each said in words for the log; none means its returns need no read.
 * - a line giving units back (negative quantity) on an order that also sells;
 * - a line status other than the progress states above;
 * - an element about returns or refunds with a value (`returnMarks`: a returned quantity, a return
 *   authorisation number; which ones Ap21 fills in on an order is UNCONFIRMED, so any counts);
 * - a payment with a negative amount: a credit (guide p.123, "negative amounts … mean a credit").
 */
export function returnSignsOf(order: Ap21Order): string[] {
  const signs: string[] = [];
  if (order.lines.some((line) => line.quantity < 0)) signs.push('a line with a negative quantity');
  const statuses = new Set(order.lines.map((line) => line.status?.trim().toLowerCase() ?? '').filter((status) => status && !NO_RETURN_STATUSES.has(status)));
  for (const status of statuses) signs.push(`a line with status ${JSON.stringify(status)}`);
  for (const mark of order.returnMarks ?? []) signs.push(`${mark} filled in`);
  if (order.payments.some((payment) => payment.amount.minor < 0)) signs.push('a payment with a negative amount (a credit)');
  return signs;
}

/**
 * A return as the feed shows it: a document that only gives units back (every quantity ≤ 0, one
 * below) and is not Refundid's negative order (which the poller books itself). Its `OrigOrderNum`
 * names the order whose returns must be read.
 */
export function isReturnInFeed(order: Ap21Order): boolean {
  const units = order.lines.map((line) => line.quantity);
  return units.some((quantity) => quantity < 0) && units.every((quantity) => quantity <= 0) && !order.payments.some(isRefundidPayment);
}

/** Order numbers (lower case) that returns among these orders name as their original. */
export function originalsNamedBy(orders: readonly Ap21Order[]): Set<string> {
  const named = new Set<string>();
  for (const order of orders) {
    const original = order.origOrderNumber?.trim();
    if (isReturnInFeed(order) && original && original.toLowerCase() !== order.orderNumber.toLowerCase()) named.add(original.toLowerCase());
  }
  return named;
}

/** Detects the signs of a return in an order of the feed; replaceable only so a test can show what detection prevents. */
export type ReturnSignDetector = (order: Ap21Order) => readonly string[];
