import { createHash, timingSafeEqual } from 'node:crypto';
import * as z from 'zod/mini';
import { BadRequestError, ConflictError, ServiceUnavailableError, UnauthorizedError } from '../commons/errors';
import { logger } from '../commons/logger';
import { emitMetric } from '../commons/metrics';
import type { SecretReader } from '../commons/secrets';
import { parseOrReject } from '../commons/validation';
import { parseXml, XmlError, type XmlElement } from '../commons/xml';
import { DomainError } from '../domain/errors';
import type { Ap21Client } from '../providers/ap21/client';
import type { Ap21Return, Ap21Secret } from '../providers/ap21/schemas';
import { Ap21NotFoundError, Ap21RejectedError, Ap21ResponseError } from '../providers/ap21/statuses';
import type { InboundStatus, OrderStore, PendingInbound } from '../store/order-store';
import { ledgerOrderId } from './ap21-ledger';
import type { ReturnIntake } from './return-intake';

/**
 * `POST /ap21/returns`: an Ap21-side integration tells us a return exists. Ap21 has no webhooks,
 * so this is our own contract (documented in the README), deliberately small:
 *
 * ```xml
 * <ReturnOrder>
 *   <Id>62347</Id>                      the return's Ap21 id
 *   <PersonId>3583</PersonId>
 *   <OrigOrderId>20784</OrigOrderId>    the original order's Ap21 id (Ap21 documents only its number)
 *   <OrderNumber>W0020784-R1</OrderNumber>      optional
 *   <OrigOrderNum>W0020784</OrigOrderNum>       optional
 *   <OrderDetails><OrderDetail><SkuId>21503</SkuId><Quantity>-1</Quantity><ReturnReasonId>10365</ReturnReasonId></OrderDetail></OrderDetails>
 * </ReturnOrder>
 * ```
 *
 * The push is a hint, never the truth: it is stored, then the order and the return are read from
 * Ap21 (which alone says whether Refundid or Ap21 already refunded it) and ingested like a polled one.
 */
export interface Ap21PushNotice {
  readonly returnId: string;
  readonly personId: string;
  readonly orderId: string;
  readonly orderNumber?: string;
  readonly origOrderNumber?: string;
  readonly lines: readonly { readonly skuId: string; readonly quantity: number; readonly returnReasonId?: string }[];
}

/** HTTP Basic user name of the push (its password is `pushApiKey` of the `ap21` secret). */
const PUSH_BASIC_USER = 'ap21';
/** The alternative to Basic auth: the same key in this header. */
const PUSH_API_KEY_HEADER = 'x-api-key';

const BASIC = /^Basic ([A-Za-z0-9+/]{1,1024}={0,2})$/i;

/** The key a push presents: exactly one of Basic (user `ap21`) or the API-key header. */
function presentedKey(headers: Readonly<Record<string, string>>): string | undefined {
  const apiKey = headers[PUSH_API_KEY_HEADER];
  const authorization = headers.authorization;
  if (apiKey !== undefined && authorization !== undefined) return undefined;
  if (apiKey !== undefined) return apiKey;
  const basic = BASIC.exec(authorization ?? '');
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon > 0 && decoded.slice(0, colon) === PUSH_BASIC_USER ? decoded.slice(colon + 1) : undefined;
}

/** Constant-time equality of two secrets of any length (compared as SHA-256 digests). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Throws 401 unless the request carries the push key (re-reading the secret once: it may have rotated). */
export async function authenticatePush(secrets: SecretReader<Ap21Secret>, headers: Readonly<Record<string, string>>): Promise<void> {
  const key = presentedKey(headers);
  if (key === undefined)
    throw new UnauthorizedError(
      `send exactly one of HTTP Basic credentials (user ${PUSH_BASIC_USER}) or an ${PUSH_API_KEY_HEADER} header`,
      'missing_credentials',
    );
  if ((await secrets.get()).pushApiKey === undefined)
    throw new ServiceUnavailableError('pushes are not configured on this stage (ap21 secret has no pushApiKey)', 'not_configured');
  const valid = await secrets.verifyWithRotation((secret) => secret.pushApiKey !== undefined && sameSecret(key, secret.pushApiKey));
  if (!valid) throw new UnauthorizedError('push credentials do not match', 'invalid_credentials');
}

/** Elements each element may contain: 1 exactly once, '?' at most once, '+' at least once. */
const SHAPE: Readonly<Record<string, Readonly<Record<string, '1' | '?' | '+'>>>> = {
  ReturnOrder: { Id: '1', PersonId: '1', OrigOrderId: '1', OrderNumber: '?', OrigOrderNum: '?', OrderDetails: '1' },
  OrderDetails: { OrderDetail: '+' },
  OrderDetail: { SkuId: '1', Quantity: '1', ReturnReasonId: '?' },
};
const XML_LIMITS = { maxDepth: 4, maxBytes: 64 * 1024, maxElements: 4000 };

const id = z.string().check(z.regex(/^\d{1,22}$/, 'expected a numeric Ap21 id'));
// eslint-disable-next-line no-control-regex -- refusing control characters is the point of this pattern
const text = z.optional(z.string().check(z.minLength(1), z.maxLength(64), z.regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters')));
const noticeSchema = z.object({
  Id: id,
  PersonId: id,
  OrigOrderId: id,
  OrderNumber: text,
  OrigOrderNum: text,
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
});

/** Checks the element tree against SHAPE: no unknown, missing or repeated elements, no stray text. */
function checkShape(element: XmlElement): void {
  const allowed = SHAPE[element.name];
  if (!allowed) {
    if (element.children.length > 0) throw new BadRequestError(`<${element.name}> must hold text only`, 'invalid_return');
    return;
  }
  if (element.text.trim()) throw new BadRequestError(`<${element.name}> must not hold text`, 'invalid_return');
  const counts = new Map<string, number>();
  for (const child of element.children) {
    if (!Object.hasOwn(allowed, child.name)) throw new BadRequestError(`unexpected element <${child.name}> in <${element.name}>`, 'invalid_return');
    counts.set(child.name, (counts.get(child.name) ?? 0) + 1);
    checkShape(child);
  }
  for (const [name, rule] of Object.entries(allowed)) {
    const count = counts.get(name) ?? 0;
    if (count === 0 && rule !== '?') throw new BadRequestError(`<${element.name}> needs <${name}>`, 'invalid_return');
    if (count > 1 && rule !== '+') throw new BadRequestError(`<${name}> may appear only once in <${element.name}>`, 'invalid_return');
  }
}

const leaf = (element: XmlElement, name: string) => element.children.find((child) => child.name === name)?.text.trim();

/** Parses a pushed `<ReturnOrder>`: 400 for XML or structure we refuse, 422 for values. */
export function parseAp21Push(xml: string): Ap21PushNotice {
  let root: XmlElement;
  try {
    root = parseXml(xml, XML_LIMITS);
  } catch (error) {
    if (error instanceof XmlError) throw new BadRequestError(`body is not acceptable XML: ${error.message}`, 'malformed_xml');
    throw error;
  }
  if (root.name !== 'ReturnOrder') throw new BadRequestError(`expected <ReturnOrder>, got <${root.name}>`, 'invalid_return');
  checkShape(root);
  const details = root.children.find((child) => child.name === 'OrderDetails')!;
  const fields = (names: readonly string[], element: XmlElement) =>
    Object.fromEntries(names.flatMap((name) => (leaf(element, name) === undefined ? [] : [[name, leaf(element, name)]])));
  const raw = {
    ...fields(['Id', 'PersonId', 'OrigOrderId', 'OrderNumber', 'OrigOrderNum'], root),
    OrderDetails: details.children.map((line) => fields(['SkuId', 'Quantity', 'ReturnReasonId'], line)),
  };
  const notice = parseOrReject(noticeSchema, raw, 'pushed return');
  return {
    returnId: notice.Id,
    personId: notice.PersonId,
    orderId: notice.OrigOrderId,
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
  readonly client: Pick<Ap21Client, 'getOrder' | 'getReturn'>;
  readonly intake: ReturnIntake;
  readonly now?: () => number;
}

const pushKey = (returnId: string) => `push-${returnId}`;

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
    const attributes = { personId: notice.personId, ap21OrderId: notice.orderId, returnId: notice.returnId };
    const { stored, record } = await this.deps.store.recordPendingInbound(
      ledgerOrderId(notice.orderId),
      { source: 'ap21', key: pushKey(notice.returnId), raw, note: 'return pushed by the Ap21 integration', attributes },
      this.iso(),
    );
    if (!stored && record.attributes.personId !== notice.personId) {
      throw new ConflictError(`return ${notice.returnId} was pushed before for another person`, 'push_conflict');
    }
    if (record.status !== 'pending') return { stored, status: record.status };
    return { stored, status: await this.process(record, notice) };
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
    const { personId = '', ap21OrderId = '', returnId = '' } = record.attributes;
    const context = { order_id: record.orderId, ap21_return: returnId };
    try {
      const order = await this.deps.client.getOrder(personId, ap21OrderId);
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
        (error instanceof Ap21NotFoundError && age >= NOT_FOUND_GRACE_MS);
      if (!permanent) {
        logger.warn('pushed return left pending; the poller retries it', { ...context, error });
        return 'pending';
      }
      logger.error('pushed return needs an operator', { ...context, reason: (error as Error).message });
      emitMetric('RefundsInManualReview', 1);
      // Listed by `ops manual-review` with the poller's; released when the poller or `retry-ap21` ingests the return.
      await this.deps.store.isolate(
        {
          source: 'ap21',
          subject: `return:${returnId}`,
          fingerprint: `push:${record.key}`,
          reason: `pushed return ${returnId} cannot be processed: ${(error as Error).message}`,
          raw: record.raw,
          attributes: { ap21OrderId, personId, returnId },
        },
        this.iso(),
      );
      await this.settle(record, 'failed', (error as Error).message);
      return 'failed';
    }
  }

  private async settle(record: PendingInbound, status: 'processed' | 'failed', note: string): Promise<void> {
    await this.deps.store.settleInbound(record.orderId, record.source, record.key, status, note, this.iso());
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}
