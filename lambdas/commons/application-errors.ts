/**
 * What a use case could not do for a reason outside the domain rules (domain/errors.ts): its input,
 * a dependency, a concurrent change. Services and parsers throw these and know nothing of the
 * transport; `commons/http` alone maps each class to one HTTP status. The code says which case it
 * was, for the caller's program; the message, for a person.
 */
export abstract class ApplicationError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The input cannot be read as the document expected: not well-formed, an element missing, repeated or not text (400). */
export class MalformedInputError extends ApplicationError {}

/** The input reads, but a value in it is wrong (422). */
export class InvalidInputError extends ApplicationError {
  constructor(message: string, code = 'invalid_request') {
    super(message, code);
  }
}

/** The input names something this service has no record of, and nothing else to find it by (404). */
export class UnknownReferenceError extends ApplicationError {}

/** An idempotency key given again with other content than the first time (409). */
export class IdempotencyConflictError extends ApplicationError {}

/** Something the request needs is down, or not set up on this stage: the caller tries again later (503). */
export class DependencyUnavailableError extends ApplicationError {}

/** Another request is changing the same record and this one gave way: the caller tries again shortly (503). */
export class ConcurrentChangeError extends ApplicationError {
  constructor(message: string, code = 'temporarily_unavailable') {
    super(message, code);
  }
}
