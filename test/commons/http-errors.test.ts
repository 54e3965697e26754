import * as applicationErrors from '../../lambdas/commons/application-errors';
import * as httpErrors from '../../lambdas/commons/http-errors';
import { errorResponse } from '../../lambdas/commons/http';
import * as domainErrors from '../../lambdas/domain/errors';
import { StoreContentionError } from '../../lambdas/store/order-store';

type ErrorClass = abstract new (...args: never[]) => Error;

/** Every error class a module exports, its abstract base excluded. */
function classesOf(module: Record<string, unknown>, base: ErrorClass): [string, ErrorClass][] {
  return Object.entries(module).filter(
    (entry): entry is [string, ErrorClass] => typeof entry[1] === 'function' && entry[1] !== base && entry[1].prototype instanceof base,
  );
}

/** Status and code each domain error answers (its code is the class's own). */
const DOMAIN: Record<string, [number, string]> = {
  InvalidMoneyError: [422, 'invalid_amount'],
  InvalidRefundError: [422, 'invalid_refund'],
  OrderNotFoundError: [404, 'order_not_found'],
  RefundNotFoundError: [404, 'refund_not_found'],
  UnitsUnavailableError: [409, 'units_unavailable'],
  RefundConflictError: [409, 'refund_conflict'],
  TransitionRejectedError: [409, 'transition_rejected'],
};

/** Status each application error answers; its code is the one it was thrown with. */
const APPLICATION: Record<string, number> = {
  MalformedInputError: 400,
  InvalidInputError: 422,
  UnknownReferenceError: 404,
  IdempotencyConflictError: 409,
  DependencyUnavailableError: 503,
  ConcurrentChangeError: 503,
};

/** Transport errors, built as the HTTP layer builds them, with the answer each carries. */
const TRANSPORT: Record<string, [Error, number, string]> = {
  BadRequestError: [new httpErrors.BadRequestError('m'), 400, 'bad_request'],
  UnauthorizedError: [new httpErrors.UnauthorizedError(), 401, 'unauthorized'],
  ForbiddenError: [new httpErrors.ForbiddenError('m'), 403, 'forbidden'],
  ServiceUnavailableError: [new httpErrors.ServiceUnavailableError('m', 'not_configured'), 503, 'not_configured'],
  PayloadTooLargeError: [new httpErrors.PayloadTooLargeError(10), 413, 'payload_too_large'],
  UnsupportedMediaTypeError: [new httpErrors.UnsupportedMediaTypeError('text/xml'), 415, 'unsupported_media_type'],
};

const answered = (error: unknown) => {
  const { status, body } = errorResponse(error);
  return { status, code: (body as { error: { code: string } }).error.code };
};

describe('commons/http error mapping', () => {
  it('has a row for every error class the domain, the application and the transport export', () => {
    const names = (classes: [string, ErrorClass][]) => classes.map(([name]) => name).sort();
    expect(names(classesOf(domainErrors, domainErrors.DomainError))).toEqual(Object.keys(DOMAIN).sort());
    expect(names(classesOf(applicationErrors, applicationErrors.ApplicationError))).toEqual(Object.keys(APPLICATION).sort());
    expect(names(classesOf(httpErrors, httpErrors.HttpError))).toEqual(Object.keys(TRANSPORT).sort());
  });

  it.each(classesOf(domainErrors, domainErrors.DomainError))('answers %s with its status and code', (name, Class) => {
    const [status, code] = DOMAIN[name]!;
    expect(answered(new (Class as unknown as new (message: string) => Error)('m'))).toEqual({ status, code });
  });

  it.each(classesOf(applicationErrors, applicationErrors.ApplicationError))('answers %s with its status and the code it was thrown with', (name, Class) => {
    const error = new (Class as unknown as new (message: string, code: string) => Error)('m', 'some_code');
    expect(answered(error)).toEqual({ status: APPLICATION[name], code: 'some_code' });
  });

  it('gives the default codes of the application errors that have one', () => {
    expect(answered(new applicationErrors.InvalidInputError('m'))).toEqual({ status: 422, code: 'invalid_request' });
    expect(answered(new applicationErrors.ConcurrentChangeError('m'))).toEqual({ status: 503, code: 'temporarily_unavailable' });
  });

  it.each(Object.entries(TRANSPORT))('answers %s with the status and code it carries', (_, [error, status, code]) => {
    expect(answered(error)).toEqual({ status, code });
  });

  it('answers store contention 503 busy, and anything else 500 without its message', () => {
    expect(answered(new StoreContentionError('x'))).toEqual({ status: 503, code: 'busy' });
    expect(errorResponse(new Error('secret detail'))).toEqual({
      status: 500,
      body: { error: { code: 'internal_error', message: 'unexpected error; it has been logged' } },
    });
  });
});
