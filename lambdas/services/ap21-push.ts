import * as z from 'zod/mini';
import { IdempotencyConflictError, MalformedInputError } from '../commons/application-errors';
import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';
import { parseOrReject } from '../commons/validation';
import { childElements, parseXml, XmlError, type XmlElement } from '../commons/xml';
import { orderNumberKey } from '../domain/ap21-origin';
import { DomainError } from '../domain/errors';
import type { Ap21Client } from '../providers/ap21/client';
import type { Ap21Order, Ap21Return } from '../providers/ap21/schemas';
import { Ap21NotFoundError, Ap21RejectedError, Ap21ResponseError } from '../providers/ap21/statuses';
import type { InboundStatus, OrderStore, PendingInbound } from '../store/order-store';
import { AP21_RETURN_REF, ledgerOrderId, returnRefundId } from './ap21-ledger';
import type { ReturnIntake } from './return-intake';

/**
 * `POST /ap21/returns`: an Ap21-side integration tells us a return exists. Ap21 has no webhooks,
 * so the endpoint is ours, but the body is Ap21's: the `<ReturnOrder>` as the Retail API itself
 * answers `GET /Persons/{pid}/Orders/{oid}/Returns/{rid}` (docs/providers.md §3, Retail API guide
 * pp.150–151), any payload version, with whatever elements it carries. The few refund-relay needs
 * are validated; every other element, known or not, is ignored:
 *
 * ```xml
 * <ReturnOrder>
 *   <Id>62347</Id>                       the return's Ap21 id
 *   <OrderNumber>W0020784-R1</OrderNumber>  optional
 *   <PersonId>3583</PersonId>
 *   … OrderDateTime, totals, Addresses, Contacts, Payments, Currency …   ignored
 *   <OrderDetails><OrderDetail><SkuId>21503</SkuId><Quantity>-1</Quantity><ReturnReasonId>10365</ReturnReasonId>…</OrderDetail></OrderDetails>
 *   <OrigOrderNum>W0020784</OrigOrderNum>  the original order, found by `GET /OrderNumbers/{n}`
 * </ReturnOrder>
 * ```
 *
 * The original order may be named instead by its Ap21 id in `<OrigOrderId>` (refund-relay's
 * earlier, smaller form; Ap21 documents no such element), which wins when both are given.
 *
 * The push is a hint, never the truth: it is stored, then the order and the return are read from
 * Ap21 (which alone says whether Refundid or Ap21 already refunded it) and ingested like a polled one.
 */
export interface Ap21PushNotice {
  readonly returnId: string;
  readonly personId: string;
  /** The original order's Ap21 id, when the push gives it (`OrigOrderId`). */
  readonly orderId?: string;
  readonly orderNumber?: string;
  /** The original order's number (`OrigOrderNum`); how Ap21 names it. */
  readonly origOrderNumber?: string;
  readonly lines: readonly { readonly skuId: string; readonly quantity: number; readonly returnReasonId?: string }[];
}

/**
 * Room for Ap21's full document: about 1.2 KB and 30 elements a line as the guide shows it, and
 * up to 500 lines, nested a few levels (Addresses/Delivery, Discounts/Discount), newer versions
 * deeper. The body limit of the route (functions/ap21-returns.ts) is the same MAX_PUSH_BYTES.
 */
export const MAX_PUSH_BYTES = 1024 * 1024;
const XML_LIMITS = { maxDepth: 16, maxBytes: MAX_PUSH_BYTES, maxElements: 50_000 };
/** Ap21's web order numbers are at most 30 characters (the Retail API's order POST). */
const MAX_ORDER_NUMBER = 30;

const id = z.string().check(z.regex(/^\d{1,22}$/, 'expected a numeric Ap21 id'));
// eslint-disable-next-line no-control-regex -- refusing control characters is the point of this pattern
const text = (max: number) => z.optional(z.string().check(z.maxLength(max), z.regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters')));
const noticeSchema = z
  .object({
    Id: id,
    PersonId: id,
    OrigOrderId: z.optional(id),
    OrderNumber: text(64),
    OrigOrderNum: text(64),
    OrderDetails: z
      .array(
        z.object({
          SkuId: id,
          // Returned units are negative in Ap21; a positive or absurd count is refused, not flipped.
          Quantity: z.string().check(
            z.regex(/^-[1-9]\d{0,5}$/, 'expected a negative whole quantity'),
            z.refine((value) => Number(value) >= -100_000, 'more than 100000 units'),
          ),
          ReturnReasonId: z.optional(id),
        }),
      )
      .check(z.maxLength(500)),
  })
  .check(
    z.refine(
      (notice) => notice.OrigOrderId !== undefined || (notice.OrigOrderNum ?? '').length <= MAX_ORDER_NUMBER,
      `OrigOrderNum: longer than Ap21's ${MAX_ORDER_NUMBER} characters, so no order has it`,
    ),
  );

/**
 * The one `name` child of `element` refund-relay reads: its trimmed text, or undefined when absent
 * or empty (Ap21 writes empty elements as `<Name />`). Twice, or holding elements, is ambiguous: refused.
 */
function single(element: XmlElement, name: string): string | undefined {
  const found = element.children.filter((child) => child.name === name);
  if (found.length > 1) throw new MalformedInputError(`<${name}> may appear only once in <${element.name}>`, 'invalid_return');
  const [only] = found;
  if (only && only.children.length > 0) throw new MalformedInputError(`<${name}> in <${element.name}> must hold text only`, 'invalid_return');
  return only?.text.trim() || undefined;
}

function required(element: XmlElement, name: string): string {
  const value = single(element, name);
  if (value === undefined) throw new MalformedInputError(`<${element.name}> needs <${name}>`, 'invalid_return');
  return value;
}

function leaves<T extends string>(element: XmlElement, needed: readonly T[], optional: readonly T[]): Partial<Record<T, string>> {
  const values: Partial<Record<T, string>> = {};
  for (const name of needed) values[name] = required(element, name);
  for (const name of optional) {
    const value = single(element, name);
    if (value !== undefined) values[name] = value;
  }
  return values;
}

/**
 * Parses a pushed `<ReturnOrder>`: a MalformedInputError for XML we refuse or an element we need
 * that is missing, repeated or not text, an InvalidInputError for a value that is wrong. Elements refund-relay does not read, known
 * or not, anywhere, are ignored (as in every Ap21 read, docs/design.md §2.5).
 */
export function parseAp21Push(xml: string): Ap21PushNotice {
  let root: XmlElement;
  try {
    root = parseXml(xml, XML_LIMITS);
  } catch (error) {
    if (error instanceof XmlError) throw new MalformedInputError(`body is not acceptable XML: ${error.message}`, 'malformed_xml');
    throw error;
  }
  if (root.name !== 'ReturnOrder') throw new MalformedInputError(`expected <ReturnOrder>, got <${root.name}>`, 'invalid_return');
  const head = leaves(root, ['Id', 'PersonId'], ['OrigOrderId', 'OrderNumber', 'OrigOrderNum']);
  if (head.OrigOrderId === undefined && head.OrigOrderNum === undefined) {
    throw new MalformedInputError('<ReturnOrder> needs <OrigOrderNum>, the original order number (or <OrigOrderId>, its Ap21 id)', 'invalid_return');
  }
  const detailsElements = root.children.filter((child) => child.name === 'OrderDetails');
  if (detailsElements.length !== 1) {
    throw new MalformedInputError(
      detailsElements.length ? '<OrderDetails> may appear only once in <ReturnOrder>' : '<ReturnOrder> needs <OrderDetails>',
      'invalid_return',
    );
  }
  const lineElements = childElements(detailsElements[0]!, 'OrderDetail');
  if (lineElements.length === 0) throw new MalformedInputError('<OrderDetails> needs <OrderDetail>', 'invalid_return');
  const raw = { ...head, OrderDetails: lineElements.map((line) => leaves(line, ['SkuId', 'Quantity'], ['ReturnReasonId'])) };
  const notice = parseOrReject(noticeSchema, raw, 'pushed return');
  return {
    returnId: notice.Id,
    personId: notice.PersonId,
    ...(notice.OrigOrderId !== undefined && { orderId: notice.OrigOrderId }),
    ...(notice.OrderNumber !== undefined && { orderNumber: notice.OrderNumber }),
    ...(notice.OrigOrderNum !== undefined && { origOrderNumber: notice.OrigOrderNum }),
    lines: notice.OrderDetails.map((line) => ({
      skuId: line.SkuId,
      quantity: Number(line.Quantity),
      ...(line.ReturnReasonId !== undefined && { returnReasonId: line.ReturnReasonId }),
    })),
  };
}

/** Pushes this much younger are left to the request that stored them; older pending ones are retried. */
const PUSH_RETRY_AFTER_MS = 60_000;
/** Ap21 may not serve a return the moment it is pushed; after this, "not found" means it never will. */
const NOT_FOUND_GRACE_MS = 24 * 3600_000;

export interface Ap21PushInboxDeps {
  readonly store: OrderStore;
  readonly client: Pick<Ap21Client, 'getOrder' | 'getOrderByNumber' | 'getReturn'>;
  readonly intake: ReturnIntake;
  readonly now?: () => number;
}

const pushKey = (returnId: string) => `push-${returnId}`;

/**
 * Where a push is kept: beside the order's ledger when the push names the order's Ap21 id; else
 * (Ap21's own document names only `OrigOrderNum`) under the order number, so it is stored before
 * Ap21 is asked which order that is.
 */
const pushPartition = (notice: Ap21PushNotice): string =>
  notice.orderId !== undefined ? ledgerOrderId(notice.orderId) : `ap21-number-${encodeURIComponent(orderNumberKey(notice.origOrderNumber ?? ''))}`;

/** The pushed person and the original order Ap21 has under the pushed number disagree: the push is wrong. */
class PushMismatchError extends Error {}

function unitsBySku(lines: readonly { readonly skuId: string; readonly quantity: number }[]): string {
  const units = new Map<string, number>();
  for (const line of lines) units.set(line.skuId, (units.get(line.skuId) ?? 0) + line.quantity);
  return JSON.stringify([...units].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * Storage first (docs/design.md §2.4): a push is kept as a pending inbox record, keyed on the Ap21 return
 * id, before it is acknowledged; then it is processed at once. A record left pending (Ap21 slow or
 * down, a crash after the 202) is processed again by the poller's next run.
 */
export class Ap21PushInbox {
  private readonly now: () => number;

  constructor(private readonly deps: Ap21PushInboxDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Stores the push (once per return) and processes it; the status says how far it got. */
  async receive(notice: Ap21PushNotice, raw: string): Promise<{ readonly stored: boolean; readonly status: InboundStatus }> {
    const attributes = {
      personId: notice.personId,
      returnId: notice.returnId,
      ...(notice.orderId !== undefined && { ap21OrderId: notice.orderId }),
      ...(notice.origOrderNumber !== undefined && { origOrderNumber: notice.origOrderNumber }),
    };
    const { stored, record } = await this.deps.store.recordPendingInbound(
      pushPartition(notice),
      { source: 'ap21', key: pushKey(notice.returnId), raw, note: 'return pushed by the Ap21 integration', attributes },
      this.iso(),
    );
    if (!stored && record.attributes.personId !== notice.personId) {
      throw new IdempotencyConflictError(`return ${notice.returnId} was pushed before for another person`, 'push_conflict');
    }
    if (record.status === 'processed' && !stored && (await this.mayReleaseOnReceipt(notice))) {
      // Pushed again once processed: Ap21 may now show the return received (docs/design.md §2.9), so it is read again.
      return { stored, status: await this.process(record, notice) };
    }
    if (record.status !== 'pending') return { stored, status: record.status };
    return { stored, status: await this.process(record, notice) };
  }

  /**
   * Whether a return pushed again may release a refund waiting for its receipt: only on a stage that
   * pays some channel on receipt, and only when the order's ledger (by its Ap21 id, else its number)
   * holds a refund of this return still waiting, or on Apace with its fallback to the card held
   * until a receipt not yet seen (docs/design.md §2.9): otherwise a repeat costs no Ap21 call.
   */
  private async mayReleaseOnReceipt(notice: Ap21PushNotice): Promise<boolean> {
    const rules = this.deps.intake.ledgerSettings.receipt;
    if (!rules || rules.payOnReceipt.size === 0) return false;
    const byNumber =
      notice.orderId === undefined ? await this.deps.store.findReference('order_number', orderNumberKey(notice.origOrderNumber ?? '')) : undefined;
    const orderId = notice.orderId !== undefined ? ledgerOrderId(notice.orderId) : byNumber?.orderId;
    // An order not found by its number yet (the lookup index is eventually consistent): Ap21 is read, as for a first push.
    if (orderId === undefined) return true;
    const order = await this.deps.store.getOrder(orderId);
    if (!order) return false;
    return Object.values(order.refunds).some(
      (refund) =>
        (refund.id === returnRefundId(notice.returnId) || refund.refs[AP21_RETURN_REF] === notice.returnId) && this.deps.intake.receiptMatters(refund, order),
    );
  }

  /** Re-processes pushes still pending from earlier requests, starting each only while `hasTime()` (the caller's budget). */
  async processPending(nowMs: number, limit: number, hasTime: () => boolean = () => true): Promise<void> {
    const pending = await this.deps.store.findPendingInbound('ap21', new Date(nowMs - PUSH_RETRY_AFTER_MS).toISOString(), limit);
    for (const record of pending) {
      if (!hasTime()) return;
      if (record.key === pushKey(record.attributes.returnId ?? '')) await this.process(record);
    }
  }

  /** Reads the order and return from Ap21 and ingests the return. Ap21 and rule failures leave the push pending or failed. */
  private async process(record: PendingInbound, pushed?: Ap21PushNotice): Promise<InboundStatus> {
    const { personId = '', origOrderNumber = '', returnId = '' } = record.attributes;
    let { ap21OrderId = '' } = record.attributes;
    const context = { order_id: record.orderId, ap21_return: returnId };
    try {
      const order = ap21OrderId ? await this.deps.client.getOrder(personId, ap21OrderId) : await this.orderByNumber(origOrderNumber, personId);
      ap21OrderId = order.orderId;
      const ret: Ap21Return = await this.deps.client.getReturn(personId, ap21OrderId, returnId);
      if (pushed && unitsBySku(pushed.lines) !== unitsBySku(ret.lines)) logger.warn('pushed return differs from Ap21; Ap21 wins', context);
      const outcome = await this.deps.intake.ingest(order, ret);
      await this.settle(record, 'processed', `ingested: ${outcome.kind}`);
      return 'processed';
    } catch (error) {
      const age = this.now() - Date.parse(record.receivedAt);
      const permanent =
        error instanceof DomainError ||
        error instanceof Ap21ResponseError ||
        error instanceof Ap21RejectedError ||
        error instanceof PushMismatchError ||
        (error instanceof Ap21NotFoundError && age >= NOT_FOUND_GRACE_MS);
      if (!permanent) {
        logger.warn('pushed return left pending; the poller retries it', { ...context, error });
        return 'pending';
      }
      logger.error('pushed return needs an operator', { ...context, reason: error.message });
      emitMetric('RefundsInManualReview', 1);
      // Listed by `ops manual-review` with the poller's; released when the poller or `retry-ap21` ingests the return.
      await this.deps.store.isolate(
        {
          source: 'ap21',
          subject: `return:${returnId}`,
          fingerprint: `push:${record.key}`,
          reason: `pushed return ${returnId} cannot be processed: ${error.message}`,
          raw: record.raw,
          attributes: { ...(ap21OrderId && { ap21OrderId }), ...(origOrderNumber && { origOrderNumber }), personId, returnId },
        },
        this.iso(),
      );
      await this.settle(record, 'failed', error.message);
      return 'failed';
    }
  }

  /** The original order named only by number (`GET /OrderNumbers/{n}`); it must be the pushed person's. */
  private async orderByNumber(origOrderNumber: string, personId: string): Promise<Ap21Order> {
    const order = await this.deps.client.getOrderByNumber(origOrderNumber);
    if (!order) throw new Ap21NotFoundError(`Ap21 has no order number ${origOrderNumber} (404)`);
    if (order.personId !== personId) {
      throw new PushMismatchError(`order number ${origOrderNumber} is person ${order.personId}'s in Ap21, not the pushed person ${personId}'s`);
    }
    return order;
  }

  private async settle(record: PendingInbound, status: 'processed' | 'failed', note: string): Promise<void> {
    await this.deps.store.settleInbound(record.orderId, record.source, record.key, status, note, this.iso());
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}
