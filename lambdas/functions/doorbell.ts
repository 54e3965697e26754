import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsDoorbell } from '../services/sqs-doorbell';
import type { Doorbell } from '../services/sweeper';
import type { Runtime } from './runtime';

/** The SQS doorbell in AWS; none locally, where the in-process sweeper loop finds new refunds. */
export function dispatchDoorbell(rt: Runtime): Doorbell | undefined {
  return rt.config.DISPATCH_QUEUE_URL ? new SqsDoorbell(new SQSClient({}), rt.config.DISPATCH_QUEUE_URL) : undefined;
}
