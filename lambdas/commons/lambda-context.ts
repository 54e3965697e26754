import type { Context } from 'aws-lambda';
import { logger } from './logger';

/**
 * Wraps a Lambda entry so every log line of an invocation carries the Lambda context (request id,
 * function name, cold start), and keys appended during one invocation never leak into the next.
 * This is all middy's Powertools middleware did here; doing it directly keeps middy out of every
 * bundle.
 */
export function withLambdaContext<E, R>(handle: (event: E, context: Context) => Promise<R>): (event: E, context: Context) => Promise<R> {
  return async (event, context) => {
    logger.refreshSampleRateCalculation();
    logger.addContext(context);
    try {
      return await handle(event, context);
    } finally {
      logger.resetKeys();
    }
  };
}
