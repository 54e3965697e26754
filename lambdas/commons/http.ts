import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { lambdaDeadline, withDeadline } from './deadline';
import { withLambdaContext } from './lambda-context';
import { MEDIA_TYPES } from './media-types';
import {
  ApplicationError,
  ConcurrentChangeError,
  DependencyUnavailableError,
  IdempotencyConflictError,
  InvalidInputError,
  MalformedInputError,
  UnknownReferenceError,
} from './application-errors';
import {
  DomainError,
  InvalidMoneyError,
  InvalidRefundError,
  OrderNotFoundError,
  RefundConflictError,
  RefundNotFoundError,
  TransitionRejectedError,
  UnitsUnavailableError,
} from '../domain/errors';
import { StoreContentionError } from '../store/order-store';
import { bounded, MAX_MESSAGE_CHARS } from './bounded';
import { BadRequestError, HttpError, PayloadTooLargeError, UnsupportedMediaTypeError } from './http-errors';
import { logger } from './logger';
import { describeError } from './redact';

/** An inbound request, normalized from the API Gateway REST proxy event. */
export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly pathParameters: Readonly<Record<string, string>>;
  /** Every value of every query parameter, so repeated parameters can be refused. */
  readonly query: Readonly<Record<string, readonly string[]>>;
  /** Header names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  /** The exact bytes received: signatures are computed over these. */
  readonly body: Buffer;
  readonly sourceIp: string;
  readonly correlationId: string;
  readonly receivedAt: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: unknown;
}

export interface RouteOptions {
  /** Route name for logs, e.g. `apace.verification`. */
  readonly name: string;
  readonly maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/** API Gateway's integration timeout: a REST API answers 504 when a Lambda takes longer. */
export const API_GATEWAY_TIMEOUT_MS = 29_000;
/**
 * How long a handler may work on a request, counted from when it starts: provider calls are cut
 * short at this deadline (commons/deadline.ts), leaving API Gateway's 29 s room for a cold start
 * and the answer. lib/ checks every API function's timeout against it.
 */
export const INBOUND_DEADLINE_MS = 24_000;
/** Kept back from the Lambda's own remaining time to answer and log. */
const ANSWER_RESERVE_MS = 500;
/** A caller's `x-correlation-id` is kept when it matches this; otherwise the request id is used. */
export const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * The status of every domain and application error, by class: the one place a rule or a use case
 * meets HTTP. Services throw these and never a status; a class missing here answers 500.
 */
const STATUS_OF = new Map<ErrorClass, number>([
  [MalformedInputError, 400],
  [OrderNotFoundError, 404],
  [RefundNotFoundError, 404],
  [UnknownReferenceError, 404],
  [UnitsUnavailableError, 409],
  [RefundConflictError, 409],
  [TransitionRejectedError, 409],
  [IdempotencyConflictError, 409],
  [InvalidMoneyError, 422],
  [InvalidRefundError, 422],
  [InvalidInputError, 422],
  [DependencyUnavailableError, 503],
  [ConcurrentChangeError, 503],
]);

const INTERNAL_ERROR: HttpResponse = { status: 500, body: { error: { code: 'internal_error', message: 'unexpected error; it has been logged' } } };

const answerWith = (status: number, code: string, message: string): HttpResponse => ({
  status,
  body: { error: { code, message: bounded(message, MAX_MESSAGE_CHARS) } },
});

/**
 * The one mapping from anything thrown to an HTTP answer. Messages are cut to MAX_MESSAGE_CHARS
 * here, once for every route: many name what the caller sent (an element, a key, a value).
 */
export function errorResponse(error: unknown): HttpResponse {
  if (error instanceof HttpError) return answerWith(error.status, error.code, error.message);
  if (error instanceof DomainError || error instanceof ApplicationError) {
    const status = STATUS_OF.get(error.constructor as ErrorClass);
    return status === undefined ? INTERNAL_ERROR : answerWith(status, error.code, error.message);
  }
  if (error instanceof StoreContentionError) {
    return { status: 503, body: { error: { code: 'busy', message: 'the refund is changing concurrently; retry shortly' } } };
  }
  return INTERNAL_ERROR;
}

function lowerCaseHeaders(headers: APIGatewayProxyEvent['headers']): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) if (value !== undefined) result[name.toLowerCase()] = value;
  return result;
}

function decodeBody(event: APIGatewayProxyEvent, limit: number): Buffer {
  if (!event.body) return Buffer.alloc(0);
  // Cheap size check before decoding: base64 inflates by 4/3.
  const approximate = event.isBase64Encoded ? Math.floor((event.body.length * 3) / 4) : Buffer.byteLength(event.body);
  if (approximate > limit + 2) throw new PayloadTooLargeError(limit);
  const body = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
  if (body.length > limit) throw new PayloadTooLargeError(limit);
  return body;
}

function toRequest(event: APIGatewayProxyEvent, options: RouteOptions): HttpRequest {
  const headers = lowerCaseHeaders(event.headers);
  const given = headers['x-correlation-id'];
  const correlationId = given && CORRELATION_ID.test(given) ? given : (event.requestContext?.requestId ?? randomUUID());
  const query: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(event.multiValueQueryStringParameters ?? {})) query[name] = values ?? [];
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) if (!query[name] && value !== undefined) query[name] = [value];
  return {
    method: event.httpMethod,
    path: event.path,
    pathParameters: Object.fromEntries(Object.entries(event.pathParameters ?? {}).filter((e): e is [string, string] => e[1] !== undefined)),
    query,
    headers,
    body: decodeBody(event, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES),
    sourceIp: event.requestContext?.identity?.sourceIp ?? '',
    correlationId,
    receivedAt: new Date().toISOString(),
  };
}

/** A query parameter given exactly once, or undefined. Repeating it is refused (400). */
export function queryParam(request: HttpRequest, name: string): string | undefined {
  const values = request.query[name];
  if (!values || values.length === 0) return undefined;
  if (values.length > 1) throw new BadRequestError(`query parameter ${name} must be given once`, 'repeated_parameter');
  return values[0];
}

/** The body as strictly decoded UTF-8 text of an expected media type (415, 400 otherwise). */
export function textBody(request: HttpRequest, mediaType: string | readonly string[]): string {
  const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const accepted = typeof mediaType === 'string' ? [mediaType] : mediaType;
  if (!accepted.includes(contentType)) throw new UnsupportedMediaTypeError(accepted.join(' or '));
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(request.body);
  } catch {
    throw new BadRequestError('request body is not valid UTF-8', 'invalid_encoding');
  }
}

/** The body parsed as JSON (415 for another media type, 400 for malformed JSON). */
export function jsonBody(request: HttpRequest): { raw: string; value: unknown } {
  const raw = textBody(request, MEDIA_TYPES.json);
  try {
    return { raw, value: JSON.parse(raw) as unknown };
  } catch {
    throw new BadRequestError('request body is not valid JSON', 'malformed_json');
  }
}

/**
 * Wraps a route's logic as a Lambda handler: Powertools context on every log line, a correlation
 * id echoed back, one access log line per request, every error mapped by `errorResponse`, and a
 * deadline (INBOUND_DEADLINE_MS, or sooner if the Lambda's own timeout is) that no provider call
 * outlives, so the answer reaches API Gateway within its 29 s whatever a provider does.
 */
export function httpHandler(options: RouteOptions, handle: (request: HttpRequest) => Promise<HttpResponse>) {
  const base = async (event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> => {
    const now = Date.now();
    const deadlineAt = Math.min(now + INBOUND_DEADLINE_MS, lambdaDeadline(context, ANSWER_RESERVE_MS, now));
    return withDeadline(deadlineAt, () => answer(event));
  };
  const answer = async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const started = performance.now();
    let correlationId = event.requestContext?.requestId ?? randomUUID();
    let response: HttpResponse;
    try {
      const request = toRequest(event, options);
      correlationId = request.correlationId;
      logger.appendKeys({ correlation_id: correlationId, route: options.name });
      response = await handle(request);
    } catch (error) {
      response = errorResponse(error);
      const detail = { status: response.status, error: describeError(error) };
      if (response.status >= 500) logger.error('request failed', detail);
      else logger.warn('request rejected', detail);
    }
    logger.info('request handled', { method: event.httpMethod, status: response.status, duration_ms: Math.round(performance.now() - started) });
    return {
      statusCode: response.status,
      headers: { 'content-type': 'application/json', 'x-correlation-id': correlationId },
      body: JSON.stringify(response.body),
    };
  };
  return withLambdaContext(base);
}
