import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** The client and table every DynamoDB adapter of the store shares. */
export interface TableAccess {
  readonly db: DynamoDBDocumentClient;
  readonly tableName: string;
}

/** Raw inbound text kept in an item is cut here (DynamoDB items stop at 400 KB). */
const RAW_LIMIT = 16_384;
/** Inbox records are kept this long after they were settled, then DynamoDB's TTL removes them. */
const INBOX_RETENTION_S = 90 * 24 * 3600;
export const SCAN_PAGE_SIZE = 500;
/** Marks an inbox item the store kept for a timeline entry (attribute `kept`), which a service's record of the message may replace. */
export const KEPT_FOR_TIMELINE = 'timeline';
/** Pages any paged read takes at most before it stops with `StoreScanLimitError`. */
export const SCAN_MAX_PAGES = 10_000;

export function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as { name?: string })?.name === 'ConditionalCheckFailedException';
}

/** Runs a conditional write: true if written, false if its condition failed; other errors propagate. */
export async function conditionally(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

export function boundedRaw(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.length <= RAW_LIMIT) return raw;
  return `${raw.slice(0, RAW_LIMIT)}…[truncated ${raw.length - RAW_LIMIT} chars]`;
}

export function inboxExpiry(now: string): number {
  return Math.floor(Date.parse(now) / 1000) + INBOX_RETENTION_S;
}
