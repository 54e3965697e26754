/**
 * Domain errors say what rule was broken; `commons/http` maps each class to one HTTP status.
 * Messages are safe to show to the caller: they never carry secrets or card data.
 */
export abstract class DomainError extends Error {
  abstract readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidMoneyError extends DomainError {
  readonly code = 'invalid_amount';
}

/** Input that is well-formed but cannot be accepted by the rules (422). */
export class InvalidRefundError extends DomainError {
  readonly code = 'invalid_refund';
}

export class OrderNotFoundError extends DomainError {
  readonly code = 'order_not_found';
}

export class RefundNotFoundError extends DomainError {
  readonly code = 'refund_not_found';
}

/** The order ledger cannot cover the units or amount asked for (409). */
export class UnitsUnavailableError extends DomainError {
  readonly code = 'units_unavailable';
}

/** The refund id is taken by a different refund (409). */
export class RefundConflictError extends DomainError {
  readonly code = 'refund_conflict';
}

/** The refund is not in a state the event applies to (409 when a caller asked for it directly). */
export class TransitionRejectedError extends DomainError {
  readonly code = 'transition_rejected';
}
