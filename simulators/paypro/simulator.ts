import * as z from 'zod/mini';
import { createHash } from 'node:crypto';
import { formatDecimal, type Money } from '../../lambdas/domain/money';
import type { SimRequest, SimResponse, Simulator } from '../kit';

/**
 * PayPro Global DoRefund as documented (docs/providers.md §5), for local runs and tests only. It keeps the
 * dangerous half of the API on purpose: `emailAddresses` refunds every order of that customer,
 * so a test can prove refund-relay never sends it. HTTP statuses of PayPro's error answers are
 * UNCONFIRMED: credential errors come back as 200 with `isSuccess:false`, a missing field as 400.
 */
export interface PayProSimOrder {
  readonly orderId: number;
  readonly email: string;
  readonly amount: Money;
}

const seedSchema = z.object({
  orderId: z.int().check(z.positive()),
  email: z.string(),
  amount: z.object({ minor: z.int().check(z.positive()), currency: z.string().check(z.length(3)) }),
});

export interface PayProSimulatorOptions {
  readonly vendorAccountId: number;
  readonly apiSecretKey: string;
  readonly orders: readonly PayProSimOrder[];
  /** The notice for an order refunded before; PayPro's real wording is UNCONFIRMED. */
  readonly alreadyRefundedNotice?: string;
  /** Where to send an OrderRefunded IPN (form-encoded, signed) after each refund. */
  readonly ipn?: { readonly url: string; readonly ipnSecretKey: string; readonly ipnValidationKey: string };
}

export interface IpnDelivery {
  readonly orderId: number;
  readonly status?: number;
  readonly error?: string;
}

export interface PayProSimulator extends Simulator {
  /** Every DoRefund body received, parsed, in order. */
  requests(): readonly Record<string, unknown>[];
  isRefunded(orderId: number): boolean;
  /** The IPN deliveries so far, once those in flight have ended. */
  ipnDeliveries(): Promise<readonly IpnDelivery[]>;
}

export const DEFAULT_ALREADY_REFUNDED_NOTICE = 'The order has already been refunded.';
const IPN_TIMEOUT_MS = 5_000;

interface OrderState extends PayProSimOrder {
  refunded: boolean;
}

const json = (status: number, body: unknown): SimResponse => ({ status, body });
const refusal = (status: number, request: unknown, property: string, message: string): SimResponse =>
  json(status, { response: null, request, errors: [{ propertyWithError: property, propertyErrorMessages: [message] }], isSuccess: false });

export function createPayProSimulator(options: PayProSimulatorOptions): PayProSimulator {
  const orders = new Map<number, OrderState>(options.orders.map((order) => [order.orderId, { ...order, refunded: false }]));
  const payouts = new Map<string, number>();
  const requests: Record<string, unknown>[] = [];
  const deliveries: IpnDelivery[] = [];
  const inFlight = new Set<Promise<void>>();
  const alreadyRefundedNotice = options.alreadyRefundedNotice ?? DEFAULT_ALREADY_REFUNDED_NOTICE;

  function sendIpn(order: OrderState, reason: string): void {
    const ipn = options.ipn;
    if (!ipn) return;
    const fields = {
      ORDER_ID: String(order.orderId),
      ORDER_STATUS: 'Refunded',
      ORDER_TOTAL_AMOUNT: formatDecimal(order.amount),
      ORDER_CURRENCY_CODE: order.amount.currency,
      IPN_TYPE_ID: '2',
      IPN_TYPE_NAME: 'OrderRefunded',
      IS_RESENT: '0',
      TEST_MODE: '0',
      REFUND_ISSUED_BY: 'Vendor',
      ACTION_REASON: reason,
      CUSTOMER_EMAIL: order.email,
    };
    // Computed here independently of ipn.ts, so tests cross-check both sides of the formula.
    const hash = createHash('md5').update(`${fields.ORDER_ID}${ipn.ipnSecretKey}`).digest('hex');
    const signature = createHash('sha256')
      .update(
        `${fields.ORDER_ID}${fields.ORDER_STATUS}${fields.ORDER_TOTAL_AMOUNT}${fields.CUSTOMER_EMAIL}${ipn.ipnValidationKey}${fields.TEST_MODE}${fields.IPN_TYPE_NAME}`,
      )
      .digest('hex');
    const delivery = fetch(ipn.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, HASH: hash, SIGNATURE: signature }).toString(),
      signal: AbortSignal.timeout(IPN_TIMEOUT_MS),
    })
      .then(async (response) => {
        await response.arrayBuffer();
        deliveries.push({ orderId: order.orderId, status: response.status });
      })
      .catch((error: unknown) => {
        deliveries.push({ orderId: order.orderId, error: (error as Error).message });
      })
      .finally(() => inFlight.delete(delivery));
    inFlight.add(delivery);
  }

  function doRefund(request: SimRequest): SimResponse {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(request.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return refusal(400, null, 'request', 'The request body is not valid JSON.');
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return refusal(400, body, 'request', 'The request body must be an object.');
    requests.push(body);
    if (body.vendorAccountId !== options.vendorAccountId) return refusal(200, body, 'vendorAccountId', 'Vendor account not found.');
    if (body.apiSecretKey !== options.apiSecretKey) return refusal(200, body, 'apiSecretKey', 'Invalid API secret key.');
    const reason = body.refundReason;
    if (typeof reason !== 'string' || reason.trim() === '') return refusal(400, body, 'refundReason', 'The RefundReason field is required.');

    const emails = Array.isArray(body.emailAddresses) ? body.emailAddresses.filter((email): email is string => typeof email === 'string') : [];
    const orderIds = Array.isArray(body.orderIds) ? body.orderIds : [];
    if (emails.length === 0 && orderIds.length === 0) return refusal(400, body, 'orderIds', 'Either orderIds or emailAddresses is required.');
    if (!orderIds.every((id) => Number.isSafeInteger(id))) return refusal(400, body, 'orderIds', 'Order ids must be integers.');
    // The documented danger: e-mail addresses win over orderIds and reach every order of the customer.
    const targets =
      emails.length > 0 ? [...orders.values()].filter((order) => emails.includes(order.email)).map((order) => order.orderId) : (orderIds as number[]);

    const results = targets.map((orderId) => {
      const order = orders.get(orderId);
      if (!order) return { orderId, customerEmail: null, isRefundSuccessful: false, refundNotice: 'Order not found.' };
      if (order.refunded) return { orderId, customerEmail: order.email, isRefundSuccessful: false, refundNotice: alreadyRefundedNotice };
      order.refunded = true;
      payouts.set(String(orderId), (payouts.get(String(orderId)) ?? 0) + 1);
      sendIpn(order, reason);
      return { orderId, customerEmail: order.email, isRefundSuccessful: true, refundNotice: null };
    });
    return json(200, { response: results, request: body, errors: [], isSuccess: true });
  }

  return {
    name: 'paypro',
    async handle(request) {
      if (request.path !== '/Orders/DoRefund') return json(404, { message: 'Not found' });
      if (request.method !== 'POST') return json(405, { message: 'Method not allowed' });
      return doRefund(request);
    },
    payouts: () => payouts,
    seed(record) {
      const order = seedSchema.parse(record);
      orders.set(order.orderId, { ...order, refunded: false });
    },
    requests: () => requests,
    isRefunded: (orderId) => orders.get(orderId)?.refunded ?? false,
    async ipnDeliveries() {
      await Promise.all([...inFlight]);
      return [...deliveries];
    },
  };
}
