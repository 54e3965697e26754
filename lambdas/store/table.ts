/**
 * The single table's physical layout, shared by the store adapter, the CDK stack and the local
 * runtime so they cannot disagree. Only the store adapter builds keys from it.
 */
export const TABLE = {
  partitionKey: 'PK',
  sortKey: 'SK',
  /** Epoch seconds after which DynamoDB may delete an item (inbox records). */
  ttlAttribute: 'expiresAt',
  /** Sparse index of orders with outbound work due: the outbox the dispatcher and sweeper read. */
  dueIndex: { name: 'due', partitionKey: 'dueShard', sortKey: 'dueAt' },
  dueShards: 8,
  /**
   * Index of order items by the outside name that finds them (`Order.lookupKey`, e.g. the Ap21 order
   * number): the lookup is an attribute of the order item itself, so opening an order writes no
   * reference item. Keys only; eventually consistent, like every global secondary index.
   */
  lookupIndex: { name: 'lookup', partitionKey: 'lookupKey' },
} as const;
