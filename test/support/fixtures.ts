import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../lambdas/commons/clients/dynamodb';
import { openOrder, type NewOrder, type NewRefund } from '../../lambdas/domain/order';
import type { Channel } from '../../lambdas/domain/refund';
import type { Actor, OrderStore, TimelineEntry } from '../../lambdas/store/order-store';
import { callbackUrls } from '../../lambdas/providers/apace/callback-token';
import { signApaceBody } from '../../lambdas/providers/apace/signature';
import type { ApaceSecret } from '../../lambdas/providers/apace/schemas';

export const DAY_MS = 24 * 3600 * 1000;

export function demoOrder(orderId: string, overrides: Partial<NewOrder> = {}): NewOrder {
  return {
    orderId,
    currency: 'AUD',
    lines: [
      { lineId: '1', quantity: 2, valueMinor: 11980, sku: 'SKU-21503', title: 'Linen shirt' },
      { lineId: '2', quantity: 1, valueMinor: 4500, sku: 'SKU-880', title: 'Belt' },
    ],
    payments: [{ paymentId: 'pay-1', capturedMinor: 16480, provider: 'addon_payments', transactionId: '7831830', cardLastFour: '7001' }],
    ...overrides,
  };
}

/** An order with one refund offered through Apace (as the connector will leave it). */
export async function offeredRefund(store: OrderStore, orderId: string, refundId = `${orderId}-r1`, expiresInMs = 10 * DAY_MS) {
  const now = new Date().toISOString();
  const offerExpiresAt = new Date(Date.now() + expiresInMs).toISOString();
  await demoOrderWithRefund(store, orderId, { refundId, route: 'apace', offerExpiresAt }, { now });
  await store.applyEvent(orderId, refundId, 'offer_created', { now, claimWindowMs: 0, refs: { apaceRefundId: `apace-${refundId}` } }, { actor: 'seed' });
  return { orderId, refundId, offerExpiresAt };
}

/** How a seeded refund was booked: when, by whom (the timeline's actor), and what it came from. */
export interface RefundSeeding {
  /** When the refund is booked; the order is opened then too unless `openedAt` says otherwise. */
  readonly now?: string;
  readonly openedAt?: string;
  readonly actor?: Actor;
}

/**
 * The demo order with one refund booked against it: by default one linen shirt (line 1, 59.90 AUD)
 * by card reversal, a manual refund booked by the seed. `order` changes the demo order (its
 * payments' provider, say), `refund` the refund.
 */
export async function demoOrderWithRefund(
  store: OrderStore,
  orderId: string,
  refund: Partial<NewRefund> = {},
  { now = new Date().toISOString(), openedAt = now, actor = 'seed', order = {} }: RefundSeeding & { order?: Partial<NewOrder> } = {},
) {
  const refundId = refund.refundId ?? `${orderId}-r1`;
  await store.putOrder(openOrder(demoOrder(orderId, order), openedAt));
  await store.createRefund(
    orderId,
    {
      refundId,
      lines: { '1': 1 },
      paymentId: 'pay-1',
      amount: { minor: 5990, currency: 'AUD' },
      route: 'reversal',
      source: { kind: 'manual', ref: refundId },
      ...refund,
    },
    now,
    { actor },
  );
  return { orderId, refundId };
}

/**
 * An order of one line (`title`, if given) paid by one payment, with one refund of it booked on
 * `route` (card reversal by default), as the intake would leave it: what a dispatcher test starts from. `source`, `actor`,
 * `held` and `offerExpiresAt` say how the refund was booked (by default a manual refund by the seed).
 */
export async function orderWithRefund(
  store: OrderStore,
  orderId: string,
  payment: Omit<NewOrder['payments'][number], 'paymentId' | 'capturedMinor'>,
  {
    valueMinor = 5000,
    title,
    refundId = `${orderId}-r1`,
    route = 'reversal',
    now = new Date().toISOString(),
    openedAt = now,
    actor = 'seed',
    ...refund
  }: { valueMinor?: number; title?: string; refundId?: string; route?: Channel } & RefundSeeding &
    Partial<Pick<NewRefund, 'source' | 'held' | 'offerExpiresAt'>> = {},
) {
  await store.putOrder(
    openOrder(
      {
        orderId,
        currency: 'AUD',
        lines: [{ lineId: '1', quantity: 1, valueMinor, ...(title !== undefined && { title }) }],
        payments: [{ paymentId: 'p1', capturedMinor: valueMinor, ...payment }],
      },
      openedAt,
    ),
  );
  await store.createRefund(
    orderId,
    {
      refundId,
      lines: { '1': 1 },
      paymentId: 'p1',
      amount: { minor: valueMinor, currency: 'AUD' },
      route,
      source: { kind: 'manual', ref: refundId },
      ...refund,
    },
    now,
    { actor },
  );
  return { orderId, refundId };
}

export function apaceUrls(baseUrl: string, secret: ApaceSecret, orderId: string, refundId: string, expiresAtMs = Date.now() + 10 * DAY_MS) {
  return callbackUrls(baseUrl, secret, orderId, refundId, expiresAtMs);
}

export function apaceWebhook(orderId: string, status: 'pending' | 'processed', extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    refund_success: status === 'processed',
    refund_status: status,
    refund_id: '6858a1c2-0000-4000-8000-000000000001',
    date_created: '2026-06-02T21:35:51.758Z',
    datetime_refund_sent: status === 'processed' ? '2026-06-02T21:36:11.000Z' : null,
    apace_refund_link: 'https://merchant.apacerefunds.com/app/refund/6858',
    order_id: orderId,
    item_ids: ['1'],
    refund_card: '**** **** ***** 7001',
    network: 'VISA',
    network_transaction_id: 'zfu7',
    ...extra,
  });
}

export async function postWebhook(url: string, body: string, apiSecret: string, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-signature-sha-256': signApaceBody(apiSecret, body), ...headers },
    body,
  });
}

/** Every item in the table, to prove a rejected request wrote nothing. */
export async function tableSnapshot(endpoint: string, tableName = process.env.TABLE_NAME!): Promise<unknown[]> {
  const client = createDocumentClient(endpoint);
  const items: unknown[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  client.destroy();
  return items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** The raw inbound message a timeline entry points at (kept in its inbox item, not on the order). */
export async function keptRaw(store: OrderStore, orderId: string, entry: TimelineEntry | undefined): Promise<string | undefined> {
  if (!entry?.inbox) return undefined;
  const kept = await store.listInbound(orderId);
  return kept.find((record) => `INBOX#${record.source}#${record.key}` === entry.inbox)?.raw;
}
