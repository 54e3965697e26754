import { toXml } from '../../lambdas/commons/xml';
import { AP21_ERROR_CODES } from '../../lambdas/providers/ap21/statuses';
import type { SimRequest, SimResponse } from '../kit';
import type { SimFailure } from './model';

/** How the Ap21 simulator reads requests and writes answers and errors, shared by its routes. */

export const XML_HEADERS = { 'content-type': 'text/xml; charset=utf-8' };
export const NO_DATA: SimFailure = { status: 404, code: AP21_ERROR_CODES.noDataFound };

export function ap21Error(status: number, code: number | undefined, description: string): SimResponse {
  const body = toXml('Ap21Error', { ErrorCode: code, Description: description });
  return { status, headers: XML_HEADERS, body };
}

export function failureResponse(failure: SimFailure, description = 'simulated failure'): SimResponse {
  const headers = failure.retryAfterSeconds !== undefined ? { ...XML_HEADERS, 'retry-after': String(failure.retryAfterSeconds) } : XML_HEADERS;
  if (failure.body !== undefined) return { status: failure.status, headers, body: failure.body };
  return { ...ap21Error(failure.status, failure.code, failure.code === AP21_ERROR_CODES.noDataFound ? 'No data found' : description), headers };
}

/** Query parameters are case-insensitive in Ap21 (`countryCode` and `CountryCode` both appear in the guide). */
export function param(query: URLSearchParams, name: string): string | undefined {
  for (const [key, value] of query) if (key.toLowerCase() === name.toLowerCase()) return value;
  return undefined;
}

export function header(request: SimRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
