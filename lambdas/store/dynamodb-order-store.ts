import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { NewRefund, Order } from '../domain/order';
import type { Refund, RefundEvent, TransitionContext } from '../domain/refund';
import { DynamoInbox } from './dynamodb/inbox';
import { DynamoIsolations } from './dynamodb/isolations';
import { DynamoOrders } from './dynamodb/orders';
import { DynamoOutbox } from './dynamodb/outbox';
import { DynamoReferences } from './dynamodb/references';
import { DynamoWatermarks } from './dynamodb/watermarks';
import type {
  Actor,
  Audit,
  InboundRecord,
  InboundStatus,
  Isolation,
  OrderStore,
  ReferenceKind,
  ReferenceTarget,
  ScanOptions,
  Schedule,
  Watermark,
  WatermarkCursor,
} from './order-store';

/**
 * The whole store over one DynamoDB table: each concern's adapter (lambdas/store/dynamodb/), put
 * together behind the one port services take. It adds nothing but the wiring.
 */
export class DynamoOrderStore implements OrderStore {
  private readonly orders: DynamoOrders;
  private readonly references: DynamoReferences;
  private readonly inbox: DynamoInbox;
  private readonly outbox: DynamoOutbox;
  private readonly isolations: DynamoIsolations;
  private readonly watermarks: DynamoWatermarks;

  constructor(db: DynamoDBDocumentClient, tableName: string) {
    const table = { db, tableName };
    this.references = new DynamoReferences(table);
    this.orders = new DynamoOrders(table, this.references);
    this.inbox = new DynamoInbox(table);
    this.outbox = new DynamoOutbox(table);
    this.isolations = new DynamoIsolations(table);
    this.watermarks = new DynamoWatermarks(table);
  }

  putOrder(order: Order) {
    return this.orders.putOrder(order);
  }
  getOrder(orderId: string) {
    return this.orders.getOrder(orderId);
  }
  openOrderWithRefund(order: Order, spec: NewRefund, now: string, audit: Audit) {
    return this.orders.openOrderWithRefund(order, spec, now, audit);
  }
  createRefund(orderId: string, spec: NewRefund, now: string, audit: Audit) {
    return this.orders.createRefund(orderId, spec, now, audit);
  }
  applyEvent(orderId: string, refundId: string, event: RefundEvent, ctx: TransitionContext, audit: Audit, snapshot?: Refund, schedule?: Schedule) {
    return this.orders.applyEvent(orderId, refundId, event, ctx, audit, snapshot, schedule);
  }
  readTimeline(orderId: string) {
    return this.orders.readTimeline(orderId);
  }
  recordVerification(orderId: string, refundId: string, now: string) {
    return this.orders.recordVerification(orderId, refundId, now);
  }
  scanOrders(options?: ScanOptions) {
    return this.orders.scanOrders(options);
  }

  findRefundOrders(refundId: string) {
    return this.references.findRefundOrders(refundId);
  }
  linkReference(kind: ReferenceKind, ref: string, target: ReferenceTarget, now: string) {
    return this.references.linkReference(kind, ref, target, now);
  }
  relinkReference(kind: ReferenceKind, ref: string, from: ReferenceTarget, to: ReferenceTarget, now: string, linkedBefore?: string) {
    return this.references.relinkReference(kind, ref, from, to, now, linkedBefore);
  }
  findReference(kind: ReferenceKind, ref: string) {
    return this.references.findReference(kind, ref);
  }

  recordInbound(orderId: string, record: InboundRecord, now: string) {
    return this.inbox.recordInbound(orderId, record, now);
  }
  listInbound(orderId: string) {
    return this.inbox.listInbound(orderId);
  }
  recordUnmatchedInbound(record: InboundRecord, now: string) {
    return this.inbox.recordUnmatchedInbound(record, now);
  }
  recordPendingInbound(orderId: string, record: InboundRecord & { readonly attributes: Readonly<Record<string, string>> }, now: string) {
    return this.inbox.recordPendingInbound(orderId, record, now);
  }
  findPendingInbound(source: Actor, receivedBefore: string, limit: number) {
    return this.inbox.findPendingInbound(source, receivedBefore, limit);
  }
  settleInbound(orderId: string, source: Actor, key: string, status: Exclude<InboundStatus, 'pending'>, note: string, now: string) {
    return this.inbox.settleInbound(orderId, source, key, status, note, now);
  }

  findDueOrders(now: string, limit: number) {
    return this.outbox.findDueOrders(now, limit);
  }
  findDue(now: string, limit: number) {
    return this.outbox.findDue(now, limit);
  }
  reschedule(orderId: string, version: number, dueAt: string | undefined) {
    return this.outbox.reschedule(orderId, version, dueAt);
  }

  isolate(isolation: Isolation, now: string) {
    return this.isolations.isolate(isolation, now);
  }
  releaseIsolation(source: Actor, subject: string, fingerprint: string) {
    return this.isolations.releaseIsolation(source, subject, fingerprint);
  }
  getIsolation(source: Actor, subject: string) {
    return this.isolations.getIsolation(source, subject);
  }
  listIsolations(source: Actor) {
    return this.isolations.listIsolations(source);
  }

  getWatermark(name: string) {
    return this.watermarks.getWatermark(name);
  }
  advanceWatermark(name: string, expected: Watermark | undefined, next: { readonly at: string; readonly cursor?: WatermarkCursor }, now: string) {
    return this.watermarks.advanceWatermark(name, expected, next, now);
  }
}
