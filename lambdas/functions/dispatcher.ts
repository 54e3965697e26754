import { dispatchHandler, createDispatcher } from './dispatch-runtime';
import { runtime } from './runtime';

/**
 * SQS consumer of the outbox doorbell (dispatch-runtime.ts `dispatchHandler`): each message names
 * an order, the table says what is due, and what does not fit in the invocation goes back to SQS.
 */
export const handler = dispatchHandler(createDispatcher(runtime()));
