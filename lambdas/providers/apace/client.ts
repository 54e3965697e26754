import { logger } from '../../commons/logger';
import type { SecretReader } from '../../commons/secrets';
import { formatDecimal, parseDecimal, type Money } from '../../domain/money';
import { ProviderCallError, callProvider } from '../outbound';
import type { ApaceConfig } from './config';
import {
  apaceCancelledSchema,
  apaceEmailSentSchema,
  apaceOfferCreatedSchema,
  apaceRefundFoundSchema,
  apaceRefundListSchema,
  type ApaceCreateOfferBody,
  type ApaceRefundDetails,
  type ApaceSecret,
} from './schemas';
import { LIVE_OFFER_STATUSES, apaceFailure, blocksNewOffer, cancelRefusedIn, classifyAnswer, isDuplicateRefusal, type ApaceFailure } from './statuses';

export interface ApaceOfferItem {
  /** The order line id: Apace's duplicate guard allows one live offer per order and item. */
  readonly itemId: string;
  readonly displayName: string;
  readonly sku?: string;
  readonly unitPrice?: Money;
  readonly returnQty?: number;
  readonly itemUrl?: string;
}

export interface ApaceOfferRequest {
  /** Apace's `order_id`, shown to the customer: the order number they know. */
  readonly orderId: string;
  /** From a trusted source only (docs/design.md §2.2); the offer is refused here when it is not 4 digits. */
  readonly cardLastFour: string;
  readonly amount: Money;
  readonly items: readonly ApaceOfferItem[];
  /** The refund's `offerExpiresAt`: Apace's `expiration_date`, and what verification checks. */
  readonly expiresAt: string;
  /** When the customer ordered (UTC ISO); sent as MM/DD/YYYY. */
  readonly orderDate?: string;
  readonly customer?: { readonly firstName?: string; readonly lastName?: string; readonly email?: string };
  readonly verificationUrl: string;
  readonly notificationUrl: string;
  /** `order_url`: the customer's order page. */
  readonly orderUrl?: string;
  /** `refund_notification.redirect_url`: where Apace sends the customer after the refund. */
  readonly redirectUrl?: string;
  /**
   * No offer for this refund can be older than this (the refund's creation time). It bounds the
   * search for an offer whose create answer was lost; without it the search reads every page allowed.
   */
  readonly createdSince?: string;
}

/** An offer as Apace reports it (GET /ext/refunds/:id). */
export interface ApaceOffer {
  readonly apaceRefundId: string;
  readonly orderId: string;
  readonly itemIds: readonly string[];
  readonly status: string;
  readonly activeUntil: string;
  readonly expired: boolean;
  readonly link?: string;
  /** The amount as Apace returns it (a JSON number), in decimal text. */
  readonly amount?: string;
}

export type CreateOfferResult =
  | {
      readonly kind: 'created';
      readonly apaceRefundId: string;
      /** Always given by a create; a recovered offer has it only if Apace's details carry it. */
      readonly link?: string;
      readonly activeUntil: string;
      /** The create answer was lost or refused as a duplicate, and this refund's live offer was found instead. */
      readonly recovered: boolean;
    }
  | ApaceFailure;

export type LookupResult = { readonly kind: 'found'; readonly offer: ApaceOffer } | { readonly kind: 'none' } | ApaceFailure;

export type GetOfferResult = { readonly kind: 'found'; readonly offer: ApaceOffer } | { readonly kind: 'not_found' } | ApaceFailure;

export type SendEmailResult = { readonly kind: 'sent' } | ApaceFailure;

export type CancelResult =
  /** The offer is canceled (now or before): Apace will not pay it. */
  | { readonly kind: 'cancelled' }
  /** Apace refuses: a payout is under way, done or failed there. The refund must stay on the Apace route. */
  | { readonly kind: 'refused'; readonly apaceStatus: string }
  /** Apace has no such offer for our keys: nothing to cancel. */
  | { readonly kind: 'not_found' }
  | ApaceFailure;

type Answer = { readonly kind: 'answer'; readonly status: number; readonly body: unknown } | { readonly kind: 'no_answer'; readonly error: ProviderCallError };

/** Apace and we may disagree on the time; an offer's `createdAt` is compared with this much slack. */
const CLOCK_SKEW_MS = 10 * 60 * 1000;
/** Apace stores our `expiration_date`; it may come back rounded to the second. */
const EXPIRY_TOLERANCE_MS = 1000;
const CARD_LAST_FOUR = /^\d{4}$/;

const isSuccess = (status: number) => status >= 200 && status < 300;

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function toOffer(details: ApaceRefundDetails): ApaceOffer {
  return {
    apaceRefundId: String(details.id),
    orderId: details.orderId,
    itemIds: details.productIds,
    status: details.status,
    activeUntil: details.expirationDate,
    expired: details.expired === true,
    ...(details.refundLink && { link: details.refundLink }),
    ...(details.amount !== undefined && { amount: String(details.amount) }),
  };
}

function usDate(iso: string): string {
  const date = new Date(iso);
  const pad = (value: number) => String(value).padStart(2, '0');
  return `${pad(date.getUTCMonth() + 1)}/${pad(date.getUTCDate())}/${date.getUTCFullYear()}`;
}

/** Why Apace must not be asked to create this offer, or undefined when it may. */
function requestProblem(request: ApaceOfferRequest, now: number): string | undefined {
  if (!CARD_LAST_FOUR.test(request.cardLastFour)) return 'card_last_four must be 4 digits';
  if (!request.orderId) return 'order id is empty';
  if (!Number.isSafeInteger(request.amount.minor) || request.amount.minor <= 0) return 'refund amount must be positive';
  if (request.items.length === 0) return 'an offer needs at least one item';
  const itemIds = new Set(request.items.map((item) => item.itemId));
  if (itemIds.size !== request.items.length || itemIds.has('')) return 'item ids must be unique and not empty';
  for (const item of request.items) {
    if (!item.displayName) return `item ${item.itemId} has no display name`;
    if (item.unitPrice && item.unitPrice.currency !== request.amount.currency) return `item ${item.itemId} is priced in another currency`;
    if (item.returnQty !== undefined && (!Number.isSafeInteger(item.returnQty) || item.returnQty < 1)) return `item ${item.itemId}: bad return quantity`;
  }
  const expiresAt = Date.parse(request.expiresAt);
  if (!(expiresAt > now)) return 'the offer expiry must be a time in the future';
  if (request.orderDate !== undefined && Number.isNaN(Date.parse(request.orderDate))) return 'order date is not a date';
  return undefined;
}

/** The JSON body of a create (exported for its unit test: amounts as decimal text, absent facts left out). */
export function apaceOfferBody(request: ApaceOfferRequest): ApaceCreateOfferBody {
  const { firstName, lastName, email } = request.customer ?? {};
  // Apace validates a null like any value, so absent facts are left out, never sent empty.
  const customer = {
    ...(firstName && { first_name: firstName }),
    ...(lastName && { last_name: lastName }),
    ...(email && { email }),
  };
  return {
    card_last_four: request.cardLastFour,
    order_id: request.orderId,
    refund_amount: formatDecimal(request.amount),
    items: request.items.map((item) => ({
      item_id: item.itemId,
      display_name: item.displayName,
      ...(item.sku && { sku: item.sku }),
      ...(item.unitPrice && { unit_price: formatDecimal(item.unitPrice) }),
      ...(item.returnQty !== undefined && { return_qty: item.returnQty }),
      ...(item.itemUrl && { item_url: item.itemUrl }),
    })),
    expiration_date: new Date(request.expiresAt).toISOString(),
    ...(request.orderDate && { order_date: usDate(request.orderDate) }),
    ...(request.orderUrl && { order_url: request.orderUrl }),
    ...(Object.keys(customer).length > 0 && { customer }),
    refund_verification: { url: request.verificationUrl, method: 'GET' },
    refund_notification: { webhook_url: request.notificationUrl, ...(request.redirectUrl && { redirect_url: request.redirectUrl }) },
  };
}

function sameAmount(offer: ApaceOffer, amount: Money): boolean {
  if (offer.amount === undefined) return false;
  try {
    return parseDecimal(offer.amount, amount.currency).minor === amount.minor;
  } catch {
    return false;
  }
}

/**
 * Whether a live offer is the one this request created. Apace allows one live offer per order
 * item, and another refund of ours for the same line may hold it: only an offer with this
 * refund's items, amount and expiry may be adopted.
 */
function isOfferOf(offer: ApaceOffer, request: ApaceOfferRequest): boolean {
  const wanted = new Set(request.items.map((item) => item.itemId));
  return (
    offer.orderId === request.orderId &&
    offer.itemIds.length === wanted.size &&
    offer.itemIds.every((id) => wanted.has(id)) &&
    sameAmount(offer, request.amount) &&
    Math.abs(Date.parse(offer.activeUntil) - Date.parse(request.expiresAt)) < EXPIRY_TOLERANCE_MS
  );
}

/**
 * The Apace "External module" API (docs/providers.md §1). Every method returns an outcome for every
 * provider answer and transport failure; it throws only when the secret or configuration is broken.
 */
export class ApaceClient {
  constructor(
    private readonly secrets: SecretReader<ApaceSecret>,
    private readonly config: ApaceConfig,
  ) {}

  /**
   * POST /ext/refunds. Apace has no idempotency key: when the answer is lost (timeout, reset,
   * unreadable body) or Apace refuses a duplicate, the refund's live offer is looked up, so a
   * retry adopts the offer the earlier attempt made instead of failing the refund.
   */
  async createOffer(request: ApaceOfferRequest): Promise<CreateOfferResult> {
    const problem = requestProblem(request, Date.now());
    if (problem) return apaceFailure('invalid_request', problem);
    const answer = await this.call('POST', '/ext/refunds', apaceOfferBody(request));
    if (answer.kind === 'no_answer') {
      if (!answer.error.ambiguous) return apaceFailure('unreachable', answer.error.message);
      return this.adoptLiveOffer(request, 'lost_answer', `create got no answer (${answer.error.message})`);
    }
    if (isSuccess(answer.status)) {
      const created = apaceOfferCreatedSchema.safeParse(answer.body);
      if (!created.success) return this.adoptLiveOffer(request, 'lost_answer', `create answered ${answer.status} with an unreadable body`);
      const { refund_id, refund_link, active_until } = created.data;
      return { kind: 'created', apaceRefundId: String(refund_id), link: refund_link, activeUntil: active_until, recovered: false };
    }
    if (isDuplicateRefusal(answer.status, answer.body)) {
      return this.adoptLiveOffer(request, 'duplicate', 'Apace refused a second live offer for these items');
    }
    return classifyAnswer('create offer', answer.status, answer.body);
  }

  /** The live offer (not failed, processed, canceled or expired) of this order sharing an item, if any. */
  async findLiveOffer(orderId: string, itemIds: readonly string[], options: { createdSince?: string } = {}): Promise<LookupResult> {
    const scan = await this.scanLiveOffers(orderId, itemIds, options.createdSince);
    if (!Array.isArray(scan)) return scan;
    return scan[0] ? { kind: 'found', offer: scan[0] } : { kind: 'none' };
  }

  /** GET /ext/refunds/:id */
  async get(apaceRefundId: string): Promise<GetOfferResult> {
    const answer = await this.call('GET', `/ext/refunds/${encodeURIComponent(apaceRefundId)}`);
    if (answer.kind === 'no_answer') return apaceFailure('unreachable', answer.error.message);
    if (answer.status === 404) return { kind: 'not_found' };
    if (!isSuccess(answer.status)) return classifyAnswer('get offer', answer.status, answer.body);
    const found = apaceRefundFoundSchema.safeParse(answer.body);
    if (!found.success) return apaceFailure('unexpected_response', `Apace get offer answered ${answer.status} with an unreadable body`);
    return { kind: 'found', offer: toOffer(found.data.refundData) };
  }

  /** POST /ext/refunds/:id/email. Not idempotent at Apace: a retry after a lost answer may send a second e-mail. */
  async sendOfferEmail(apaceRefundId: string): Promise<SendEmailResult> {
    const answer = await this.call('POST', `/ext/refunds/${encodeURIComponent(apaceRefundId)}/email`);
    if (answer.kind === 'no_answer') return apaceFailure('unreachable', answer.error.message);
    if (isSuccess(answer.status) && apaceEmailSentSchema.safeParse(answer.body).success) return { kind: 'sent' };
    if (isSuccess(answer.status)) return apaceFailure('unexpected_response', `Apace send email answered ${answer.status} with an unreadable body`);
    return classifyAnswer('send offer email', answer.status, answer.body);
  }

  /**
   * POST /ext/refunds/:id/cancel. Apace answers the same 400 ("Cannot cancel refund at this time")
   * when the offer is unknown and when a payout is under way (code evidence), so a refusal is
   * explained by reading the offer: unknown means nothing to cancel, pending/processed/failed
   * means the refund stays with Apace.
   */
  async cancel(apaceRefundId: string): Promise<CancelResult> {
    const answer = await this.call('POST', `/ext/refunds/${encodeURIComponent(apaceRefundId)}/cancel`);
    if (answer.kind === 'no_answer') return apaceFailure('unreachable', answer.error.message);
    if (isSuccess(answer.status) && apaceCancelledSchema.safeParse(answer.body).success) return { kind: 'cancelled' };
    if (answer.status !== 400 && answer.status !== 404) return classifyAnswer('cancel offer', answer.status, answer.body);

    const current = await this.get(apaceRefundId);
    if (current.kind !== 'found') return current;
    const { status } = current.offer;
    if (cancelRefusedIn(status)) return { kind: 'refused', apaceStatus: status };
    if (status === 'canceled') return { kind: 'cancelled' };
    return apaceFailure('provider_error', `Apace refused to cancel offer ${apaceRefundId} in status ${status}`);
  }

  /**
   * After a lost answer the offer may or may not exist; after a duplicate refusal one surely does.
   * Only an offer with this request's fingerprint is adopted (see `isOfferOf`).
   */
  private async adoptLiveOffer(request: ApaceOfferRequest, cause: 'lost_answer' | 'duplicate', why: string): Promise<CreateOfferResult> {
    const scan = await this.scanLiveOffers(
      request.orderId,
      request.items.map((item) => item.itemId),
      request.createdSince,
    );
    if (!Array.isArray(scan)) return { ...scan, reason: `${why}; looking for the offer failed: ${scan.reason}` };
    const mine = scan.find((offer) => isOfferOf(offer, request));
    if (mine) {
      logger.warn('Apace offer recovered by lookup', { order_id: request.orderId, apace_refund_id: mine.apaceRefundId, why });
      return {
        kind: 'created',
        apaceRefundId: mine.apaceRefundId,
        ...(mine.link && { link: mine.link }),
        activeUntil: mine.activeUntil,
        recovered: true,
      };
    }
    const others = scan.map((offer) => offer.apaceRefundId);
    if (others.length > 0) return apaceFailure('items_already_offered', `${why}; live offer(s) ${others.join(', ')} of other refunds cover these items`);
    if (cause === 'duplicate') return apaceFailure('items_already_offered', `${why}, but no live offer of this order was found within the search bounds`);
    // Apace's duplicate guard refuses a second offer, so creating again cannot make two.
    return apaceFailure('unreachable', `${why}; no offer of this order was found yet, so the create may be retried`);
  }

  /**
   * Live offers of the order sharing an item, newest first. The list has neither order ids nor
   * items, so each candidate's details are read; pages and candidates are bounded by config and,
   * with `createdSince`, by the candidates' creation time (Apace lists newest first).
   */
  private async scanLiveOffers(orderId: string, itemIds: readonly string[], createdSince?: string): Promise<ApaceOffer[] | ApaceFailure> {
    const oldest = createdSince === undefined ? undefined : Date.parse(createdSince) - CLOCK_SKEW_MS;
    const wanted = new Set(itemIds);
    const found: ApaceOffer[] = [];
    const { pageLength, maxPages } = this.config.lookup;
    let cursor: number | null | undefined = 1;
    for (let page = 0; page < maxPages && cursor; page++) {
      const query = new URLSearchParams({ pageLength: String(pageLength), cursor: String(cursor) });
      for (const status of LIVE_OFFER_STATUSES) query.append('status', status);
      const answer = await this.call('GET', `/ext/refunds?${query.toString()}`);
      if (answer.kind === 'no_answer') return apaceFailure('unreachable', answer.error.message);
      if (!isSuccess(answer.status)) return classifyAnswer('list offers', answer.status, answer.body);
      const list = apaceRefundListSchema.safeParse(answer.body);
      if (!list.success) return apaceFailure('unexpected_response', `Apace list offers answered ${answer.status} with an unreadable body`);

      let reachedOlder = false;
      for (const entry of list.data.refunds) {
        const createdAt = entry.createdAt === undefined ? undefined : Date.parse(entry.createdAt);
        if (oldest !== undefined && createdAt !== undefined && createdAt < oldest) {
          reachedOlder = true;
          continue;
        }
        if (entry.expired === true || (entry.status !== undefined && !blocksNewOffer(entry.status))) continue;
        const details = await this.get(String(entry.id));
        if (details.kind === 'failed') return details;
        if (details.kind === 'not_found') continue;
        const { offer } = details;
        const live = blocksNewOffer(offer.status) && !offer.expired && Date.parse(offer.activeUntil) >= Date.now();
        if (live && offer.orderId === orderId && offer.itemIds.some((id) => wanted.has(id))) found.push(offer);
      }
      if (reachedOlder) break;
      cursor = list.data.nextCursor;
    }
    return found;
  }

  /**
   * One request with the key pair. A 401 re-reads the secret once (it may have just rotated) and
   * repeats only if the keys changed: Apace locks our IP for 5 minutes after 3 failed auths.
   */
  private async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> {
    const send = async (secret: ApaceSecret): Promise<Answer> => {
      try {
        const response = await callProvider('apace', {
          method,
          url: `${this.config.apiUrl}${path}`,
          headers: {
            'apace-public-id': secret.publicId,
            'apace-secret': secret.apiSecret,
            accept: 'application/json',
            ...(body !== undefined && { 'content-type': 'application/json' }),
          },
          ...(body !== undefined && { body: JSON.stringify(body) }),
          timeoutMs: this.config.timeoutMs,
        });
        return { kind: 'answer', status: response.status, body: parseJson(response.text) };
      } catch (error) {
        if (error instanceof ProviderCallError) return { kind: 'no_answer', error };
        throw error;
      }
    };
    const secret = await this.secrets.get();
    const answer = await send(secret);
    if (answer.kind === 'answer' && answer.status === 401) {
      const fresh = await this.secrets.refresh();
      if (fresh && (fresh.publicId !== secret.publicId || fresh.apiSecret !== secret.apiSecret)) return send(fresh);
    }
    return answer;
  }
}
