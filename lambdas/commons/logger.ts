import { Logger } from '@aws-lambda-powertools/logger';
import { redactForLog } from './redact';

/**
 * The one structured JSON logger (Powertools). Every record passes through `redactForLog`, so a
 * secret, card number or customer e-mail cannot reach the logs whatever a caller passes in.
 */
export const logger = new Logger({
  serviceName: 'refund-relay',
  jsonReplacerFn: (key: string, value: unknown) => redactForLog(key, value),
});
