/**
 * Whether an order line's units may be returned at all (docs/design.md §2.7): a line the retailer
 * marked `NonReturnable`, or one whose Ap21 `Status` is one the stage lists (by default
 * `Cancelled`), answers Refundid with no returnable units and this reason, and a return of one of
 * its units is held for an operator with it, never paid automatically.
 */

/** What the rule reads of a line: Ap21's `Status` and `NonReturnable`. */
export interface LineReturnFacts {
  readonly status?: string;
  readonly nonReturnable?: boolean;
}

/** The documented default: only a cancelled line is not returnable by its status. */
export const DEFAULT_NON_RETURNABLE_STATUSES: readonly string[] = ['Cancelled'];

const normalized = (text: string) => text.trim().toLowerCase();

/** Why the line's units cannot be returned, in words Refundid can show the customer; undefined when they can. */
export function notReturnableReason(line: LineReturnFacts, nonReturnableStatuses: readonly string[]): string | undefined {
  if (line.nonReturnable) return 'This item cannot be returned: the retailer marked it non-returnable.';
  const status = line.status === undefined ? undefined : normalized(line.status);
  if (status && nonReturnableStatuses.some((listed) => normalized(listed) === status)) {
    return status === 'cancelled'
      ? 'This item was cancelled; there is nothing to return.'
      : `This item cannot be returned: its order line is ${line.status!.trim()}.`;
  }
  return undefined;
}
