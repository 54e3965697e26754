import * as z from 'zod/mini';
import { randomUUID } from 'node:crypto';
import { InvalidMoneyError } from '../../lambdas/domain/errors';
import { formatDecimal, parseDecimal, type Money } from '../../lambdas/domain/money';
import type { SimRequest, SimResponse, Simulator } from '../kit';

/**
 * Optty's token, refund and transaction-details endpoints (docs/providers.md §6), for local runs and
 * tests only. Two simulators share one state: `api` (mount it at `optty`, = OPTTY_API_URL) and
 * `auth` (mount it at `optty-auth`, = OPTTY_AUTH_URL), so faults can hit either alone.
 *
 * A repeated refundReference replays the first refund by default; what Optty really does is
 * UNCONFIRMED beyond "use a unique refundReference", so `setDuplicateAnswer('reject')` plays a
 * 400 refusal instead. Either way a reference is never paid twice.
 */
export interface OpttySimOrder {
  readonly reference: string;
  readonly captured: Money;
}

const seedSchema = z.object({
  reference: z.string().check(z.minLength(1)),
  captured: z.object({ minor: z.int().check(z.positive()), currency: z.string().check(z.length(3)) }),
});

export interface OpttySimulatorOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly merchantId: string;
  readonly orders: readonly OpttySimOrder[];
  /** Lifetime of issued tokens (Optty: 86400 s); `/token?expires_in=` overrides it, as documented. */
  readonly tokenTtlSeconds?: number;
  readonly now?: () => number;
}

export type OpttySimRefundStatus = 'SUCCESSFUL' | 'PENDING' | 'DECLINED';

export interface OpttySimulators {
  readonly api: Simulator;
  readonly auth: Simulator;
  /** Every token request, granted or not. */
  tokenRequests(): number;
  /** The raw refund request bodies, as sent. */
  refundBodies(): readonly string[];
  setTokenTtl(seconds: number): void;
  /** Every token issued so far answers 401 from now on (Optty rotated its signing keys). */
  revokeTokens(): void;
  /** The API answers 401 to every token, even new ones (the client was disabled). */
  setRejectAllTokens(reject: boolean): void;
  /** New refunds stay PENDING until `settle`. */
  setPendingMode(pending: boolean): void;
  setDuplicateAnswer(answer: 'replay' | 'reject'): void;
  settle(refundReference: string, status: 'SUCCESSFUL' | 'DECLINED'): void;
}

interface SimRefund {
  readonly refundReference: string;
  readonly bnplRefundId: string;
  readonly orderReference: string;
  readonly amount: Money;
  readonly description: string;
  readonly createdAt: string;
  status: OpttySimRefundStatus;
}

const json = (status: number, body: unknown): SimResponse => ({ status, body });
const badRequest = (message: string) => json(400, { statusCode: 400, message, error: 'Bad Request' });
const UNAUTHORIZED = json(401, { statusCode: 401, message: 'Unauthorized' });
const NOT_FOUND = json(404, { statusCode: 404, message: 'Not Found' });
const ROUTE = /^\/orders\/([^/]+)\/(refund|details)$/;

export function createOpttySimulators(options: OpttySimulatorOptions): OpttySimulators {
  const now = options.now ?? Date.now;
  const orders = new Map(options.orders.map((order) => [order.reference, order]));
  const tokens = new Map<string, number>();
  const refunds = new Map<string, SimRefund>();
  const payouts = new Map<string, number>();
  const bodies: string[] = [];
  let tokenRequests = 0;
  let tokenTtlSeconds = options.tokenTtlSeconds ?? 86_400;
  let rejectAllTokens = false;
  let pendingMode = false;
  let duplicateAnswer: 'replay' | 'reject' = 'replay';

  const pay = (refund: SimRefund) => payouts.set(refund.refundReference, (payouts.get(refund.refundReference) ?? 0) + 1);
  const amountOf = (money: Money) => Number(formatDecimal(money));

  function issueToken(request: SimRequest): SimResponse {
    tokenRequests += 1;
    if (request.method !== 'POST' || request.path !== '/token') return NOT_FOUND;
    const form = new URLSearchParams(request.body.toString('utf8'));
    if (form.get('grant_type') !== 'client_credentials' || form.get('scope') !== 'api-user')
      return badRequest('grant_type must be client_credentials and scope api-user');
    if (form.get('client_id') !== options.clientId || form.get('client_secret') !== options.clientSecret) return UNAUTHORIZED;
    const ttl = Number(request.query.get('expires_in') ?? tokenTtlSeconds);
    const token = `sim.${randomUUID()}`;
    tokens.set(token, now() + ttl * 1000);
    return json(200, { access_token: token, expires_in: ttl, token_type: 'Bearer', scope: 'api-user' });
  }

  function authorised(request: SimRequest): boolean {
    const token = /^Bearer (\S+)$/.exec(String(request.headers.authorization ?? ''))?.[1];
    const expiresAt = token === undefined ? undefined : tokens.get(token);
    return !rejectAllTokens && expiresAt !== undefined && now() < expiresAt;
  }

  function refundAnswer(refund: SimRefund): SimResponse {
    return json(200, {
      refundReference: refund.refundReference,
      bnplProvider: 'KLARNA_AU',
      refundedAmount: amountOf(refund.amount),
      refundStatus: refund.status,
      description: {},
      refundDate: new Date(refund.createdAt).toUTCString(),
      bnplRefundId: refund.bnplRefundId,
    });
  }

  function refund(orderReference: string, request: SimRequest): SimResponse {
    const raw = request.body.toString('utf8');
    bodies.push(raw);
    let body: { refundReference?: unknown; refundAmount?: { amount?: unknown; currency?: unknown }; refundDescription?: unknown };
    try {
      body = JSON.parse(raw) as typeof body;
    } catch (error) {
      return badRequest((error as Error).message);
    }
    const { refundReference, refundAmount, refundDescription } = body ?? {};
    if (typeof refundReference !== 'string' || refundReference === '') return badRequest('refundReference must be a non-empty string');
    if (typeof refundDescription !== 'string' || refundDescription === '') return badRequest('refundDescription must be a non-empty string');
    if (typeof refundAmount?.amount !== 'number' || !(refundAmount.amount > 0)) return badRequest('refundAmount.amount must be a positive number');
    if (typeof refundAmount.currency !== 'string') return badRequest('refundAmount.currency must be a string');
    const order = orders.get(orderReference);
    if (!order) return NOT_FOUND;

    const earlier = refunds.get(refundReference);
    if (earlier) return duplicateAnswer === 'replay' ? refundAnswer(earlier) : badRequest(`refundReference ${refundReference} already exists`);
    const currency = order.captured.currency;
    if (refundAmount.currency !== currency) return badRequest(`refundAmount.currency must be ${currency}`);
    let minor: number;
    try {
      minor = parseDecimal(String(refundAmount.amount), currency).minor;
    } catch (error) {
      if (error instanceof InvalidMoneyError) return badRequest(error.message);
      throw error;
    }
    const refunded = [...refunds.values()]
      .filter((existing) => existing.orderReference === orderReference && existing.status !== 'DECLINED')
      .reduce((sum, existing) => sum + existing.amount.minor, 0);
    const refundable = { minor: order.captured.minor - refunded, currency };
    if (minor > refundable.minor) return badRequest(`You can only refund amount up to ${currency} ${formatDecimal(refundable)}`);

    const created: SimRefund = {
      refundReference,
      bnplRefundId: randomUUID(),
      orderReference,
      amount: { minor, currency },
      description: refundDescription,
      createdAt: new Date(now()).toISOString(),
      status: pendingMode ? 'PENDING' : 'SUCCESSFUL',
    };
    refunds.set(refundReference, created);
    if (created.status === 'SUCCESSFUL') pay(created);
    return refundAnswer(created);
  }

  function details(orderReference: string, request: SimRequest): SimResponse {
    if (request.query.get('merchantId') !== options.merchantId) return badRequest('merchantId is invalid');
    const order = orders.get(orderReference);
    if (!order) return NOT_FOUND;
    const ofOrder = [...refunds.values()].filter((existing) => existing.orderReference === orderReference);
    return json(200, {
      merchantReference: orderReference,
      status: 'CAPTURED',
      amount: amountOf(order.captured),
      currency: order.captured.currency,
      provider: 'KLARNA_AU',
      updatedAt: new Date(now()).toISOString(),
      failureReason: null,
      bnplOrderId: `bnpl-${orderReference}`,
      transactionReference: `tx-${orderReference}`,
      transactionHistory: [],
      refunds: ofOrder.map((existing) => ({
        refundId: existing.bnplRefundId,
        amount: amountOf(existing.amount),
        currency: existing.amount.currency,
        status: existing.status,
        createdAt: existing.createdAt,
        refundReason: existing.description,
        refundFailureReason: existing.status === 'DECLINED' ? 'Declined by the payment provider' : null,
      })),
      orderCaptures: [],
    });
  }

  const api: Simulator = {
    name: 'optty',
    async handle(request) {
      const route = ROUTE.exec(request.path);
      if (!route || request.method !== 'POST') return NOT_FOUND;
      if (!authorised(request)) return UNAUTHORIZED;
      const orderReference = decodeURIComponent(route[1]!);
      return route[2] === 'refund' ? refund(orderReference, request) : details(orderReference, request);
    },
    payouts: () => payouts,
    seed(record) {
      const order = seedSchema.parse(record);
      orders.set(order.reference, order);
    },
  };
  const auth: Simulator = { name: 'optty-auth', handle: async (request) => issueToken(request), payouts: () => new Map() };

  return {
    api,
    auth,
    tokenRequests: () => tokenRequests,
    refundBodies: () => bodies,
    setTokenTtl: (seconds) => {
      tokenTtlSeconds = seconds;
    },
    revokeTokens: () => tokens.clear(),
    setRejectAllTokens: (reject) => {
      rejectAllTokens = reject;
    },
    setPendingMode: (pending) => {
      pendingMode = pending;
    },
    setDuplicateAnswer: (answer) => {
      duplicateAnswer = answer;
    },
    settle(refundReference, status) {
      const pending = refunds.get(refundReference);
      if (!pending || pending.status !== 'PENDING') throw new Error(`no pending Optty refund ${refundReference}`);
      pending.status = status;
      if (status === 'SUCCESSFUL') pay(pending);
    },
  };
}
