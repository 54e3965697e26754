import * as z from 'zod/mini';
import { BadRequestError } from '../commons/http-errors';
import type { HttpRequest } from '../commons/http';
import type { RefundIds } from '../services/apace-callbacks';

const id = () => z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/));

/** The path parameters of the Apace callback URLs: our order and refund ids (also the OpenAPI document's). */
export const callbackPathSchema = z.object({ orderId: id(), refundId: id() });

/** The order and refund ids of a callback URL, refused (400) unless they look like our ids. */
export function refundIdsFrom(request: HttpRequest): RefundIds {
  const parsed = callbackPathSchema.safeParse(request.pathParameters);
  if (!parsed.success) throw new BadRequestError('order or refund id in the path is malformed', 'invalid_path');
  return parsed.data;
}
