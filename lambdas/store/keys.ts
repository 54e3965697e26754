import { createHash } from 'node:crypto';
import type { Actor, ReferenceKind } from './order-store';
import { TABLE } from './table';

/**
 * Every key and prefix of the single table (docs/design.md §2.1): the DynamoDB adapters build keys
 * only here, so two concerns cannot spell one prefix two ways or collide on one.
 *
 * | Item            | PK                       | SK                          |
 * |-----------------|--------------------------|-----------------------------|
 * | order           | `ORDER#<orderId>`        | `ORDER`                     |
 * | inbox record    | `ORDER#<orderId>`        | `INBOX#<source>#<key>`      |
 * | timeline audit  | `ORDER#<orderId>`        | `AUDIT#<first entry index>` |
 * | unmatched inbox | `INBOX#UNMATCHED#<src>`  | `INBOX#<source>#<key>`      |
 * | reference       | `REF#<kind>#<ref>`       | `REF`                       |
 * | watermark       | `WATERMARK#<name>`       | `WATERMARK`                 |
 * | isolation       | `ISOLATED#<source>`      | `<subject>`                 |
 */
export type Key = Record<string, string>;

const { partitionKey: PK, sortKey: SK } = TABLE;

const ORDER_PREFIX = 'ORDER#';
const ORDER_SK = 'ORDER';
const INBOX_PREFIX = 'INBOX#';

export const orderPartition = (orderId: string): string => `${ORDER_PREFIX}${orderId}`;
export const orderKey = (orderId: string): Key => ({ [PK]: orderPartition(orderId), [SK]: ORDER_SK });
/** The order id of an item in an order's partition (the order itself, its inbox records). */
export const orderIdOf = (item: Record<string, unknown>): string => String(item[PK]).slice(ORDER_PREFIX.length);
export const ORDER_SORT_KEY = ORDER_SK;

/**
 * A timeline audit item: entries moved off the order item, numbered from the first entry the order
 * ever had, so a retried move writes the same item and `readTimeline` reads them in order.
 */
export const AUDIT_SORT_PREFIX = 'AUDIT#';
export const auditKey = (orderId: string, firstIndex: number): Key => ({
  [PK]: orderPartition(orderId),
  [SK]: `${AUDIT_SORT_PREFIX}${String(firstIndex).padStart(12, '0')}`,
});

/** An inbox record's sort key: one per source and sender's key, so a repeat writes nothing. */
export const inboxSortKey = (source: Actor, key: string): string => `${INBOX_PREFIX}${source}#${key}`;
export const INBOX_SORT_PREFIX = INBOX_PREFIX;
export const inboxKey = (orderId: string, source: Actor, key: string): Key => ({ [PK]: orderPartition(orderId), [SK]: inboxSortKey(source, key) });
/** Authenticated messages naming no order we know share a partition per source. */
export const unmatchedInboxPartition = (source: Actor): string => `${INBOX_PREFIX}UNMATCHED#${source}`;
/** The sender's key of an inbox record, from its sort key (`INBOX#<source>#<key>`; keys may hold `#`). */
export const inboxKeyOf = (item: Record<string, unknown>): string => String(item[SK]).split('#').slice(2).join('#');

/** A reference item, alone in its partition: an outside id (order number, refund id, Refundid id) → our ids. */
export const referenceKey = (kind: ReferenceKind, ref: string): Key => ({ [PK]: `REF#${kind}#${ref}`, [SK]: 'REF' });
export const watermarkKey = (name: string): Key => ({ [PK]: `WATERMARK#${name}`, [SK]: 'WATERMARK' });
/** Isolations of a source share one partition, so an operator (and a poller run) lists them with one query. */
export const isolationPartition = (source: Actor): string => `ISOLATED#${source}`;
export const isolationKey = (source: Actor, subject: string): Key => ({ [PK]: isolationPartition(source), [SK]: subject });
export const isolationSubjectOf = (item: Record<string, unknown>): string => String(item[SK]);

/** Orders spread over `TABLE.dueShards` partitions of the due index, by a hash of their id. */
export function dueShard(orderId: string): string {
  const bucket = createHash('sha1').update(orderId).digest().readUInt8(0) % TABLE.dueShards;
  return dueShardName(bucket);
}
export const dueShardName = (bucket: number): string => `due#${bucket}`;
/** Pending inbox records sit in the sparse due index under their own partition, never a dispatch shard. */
export const pendingShard = (source: Actor): string => `inbox#${source}`;

/** An item's primary key alone, e.g. to read an item found through a keys-only index. */
export const primaryKeyOf = (item: Record<string, unknown>): Key => ({ [PK]: String(item[PK]), [SK]: String(item[SK]) });
