import { sameSecret } from '../../commons/constant-time';
import { UnauthorizedError } from '../../commons/http-errors';
import { queryParam } from '../../commons/http';
import { logger } from '../../commons/logger';
import type { InboundVerifier } from '../provider-module';
import { opttySecretSchema, type OpttySecret } from './schemas';

const TOKEN = /^[A-Za-z0-9._~-]{1,256}$/;

/**
 * Optty signs nothing it sends (UNCONFIRMED), so the notification URL we register carries our own
 * secret: `…/providers/optty/notifications?token=<notificationSecret>`. Compared in constant time;
 * a mismatch re-reads the secret once, so a rotated token works without a redeploy.
 */
export const opttyInbound: InboundVerifier<OpttySecret, void> = {
  provider: 'optty',
  secretSchema: opttySecretSchema,
  loadSettings: () => undefined,
  async verify(request, secrets) {
    const token = queryParam(request, 'token');
    if (!token) throw new UnauthorizedError('token is missing', 'missing_token');
    if (!TOKEN.test(token)) throw new UnauthorizedError('token is malformed', 'invalid_token');
    let configured = true;
    const valid = await secrets.verifyWithRotation((secret) => {
      configured = secret.notificationSecret !== undefined;
      return configured && sameSecret(token, secret.notificationSecret!);
    });
    if (!configured) logger.error('the optty secret has no notificationSecret: Optty notifications are refused');
    if (!valid) throw new UnauthorizedError('token is not valid', 'invalid_token');
  },
};
