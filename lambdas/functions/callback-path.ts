import { BadRequestError } from '../commons/errors';
import type { HttpRequest } from '../commons/http';
import type { RefundIds } from '../services/apace-callbacks';

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** The order and refund ids of a callback URL, refused (400) unless they look like our ids. */
export function refundIdsFrom(request: HttpRequest): RefundIds {
  const { orderId = '', refundId = '' } = request.pathParameters;
  if (!ID.test(orderId) || !ID.test(refundId)) throw new BadRequestError('order or refund id in the path is malformed', 'invalid_path');
  return { orderId, refundId };
}
