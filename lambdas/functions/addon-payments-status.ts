import { InvalidInputError } from '../commons/application-errors';
import { BadRequestError } from '../commons/http-errors';
import { httpHandler, textBody } from '../commons/http';
import { MEDIA_TYPES } from '../commons/media-types';
import { AddonPaymentsResponseError, parseStatusNotification } from '../providers/addon-payments/schemas';
import { recordAddonPaymentsHint } from '../services/addon-payments-notifications';
import { runtime } from './runtime';

const { store, claimWindowMs, config } = runtime();

/** POST /providers/addon-payments/status (EPG statusURL; unsigned, so a hint) → 200 */
export const handler = httpHandler({ name: 'addon-payments.status', maxBodyBytes: 32 * 1024 }, async (request) => {
  const raw = textBody(request, MEDIA_TYPES.addonPaymentsStatus);
  const declaredJson = request.headers['content-type']!.toLowerCase().includes('json');
  if (raw.trimStart().startsWith('{') !== declaredJson) throw new BadRequestError('the body is not of its declared content type', 'content_type_mismatch');
  let notification;
  try {
    notification = parseStatusNotification(raw);
  } catch (error) {
    if (error instanceof AddonPaymentsResponseError) throw new InvalidInputError(`status notification is invalid: ${error.message}`, 'invalid_notification');
    throw error;
  }
  await recordAddonPaymentsHint(store, notification, raw, { now: request.receivedAt, claimWindowMs, leaseMs: config.DISPATCH_LEASE_MS });
  return { status: 200, body: { received: true } };
});
