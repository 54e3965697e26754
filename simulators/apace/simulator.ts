import { randomBytes, randomUUID } from 'node:crypto';
import type { SimRequest, SimResponse, Simulator } from '../kit';
import { APACE_SIGNATURE_HEADER, signApaceBody } from '../../lambdas/providers/apace/signature';

/**
 * Apace's External module as its public source code behaves (docs/providers.md §1; repo
 * yitzforwardslash/apace-payments-server), for local runs and tests only. It authenticates the
 * key pair with the per-IP lockout, validates a create the way express-validator does (every
 * failure at once, nulls validated), calls the merchant's verification URL during the create and
 * again before paying, refuses a second live offer per order item, and delivers signed webhooks
 * with Apace's retry limit. `customerAccepts` plays the customer who opens the link and claims.
 */
export interface ApaceApiKey {
  readonly publicId: string;
  readonly apiSecret: string;
}

export interface ApaceSimulatorOptions {
  /** The vendor's API key pairs (the portal allows several); webhooks are signed with the creating key's secret. */
  readonly apiKeys: readonly ApaceApiKey[];
  readonly vendorId?: string;
  /** How long an IP is refused (429) after 3 failed auths. Apace: 5 minutes. */
  readonly lockoutMs?: number;
  /** From the `pending` payout to `processed`. Apace docs: about 20 s. */
  readonly processedDelayMs?: number;
  /** Gap before a failed webhook is tried again. Apace: at least 30 minutes. */
  readonly webhookRetryGapMs?: number;
  /** Bound on each call to the merchant (Apace's axios calls have none; a simulator must end). */
  readonly callbackTimeoutMs?: number;
  /**
   * Apace's processing time between our `allow_refund: true` and the payout (default 0), and whether
   * a cancel that lands in that gap still stops the payout (default true). Whether the real Apace
   * re-checks after verifying is UNCONFIRMED; `honoursLateCancel: false` is the pessimistic case
   * the claim-window guard exists for.
   */
  readonly payoutDelayMs?: number;
  readonly honoursLateCancel?: boolean;
}

export type ApaceSimStatus = 'initialized' | 'viewed' | 'receiverVerified' | 'pending' | 'processed' | 'failed' | 'canceled' | 'refundByVendor';

export type CustomerOutcome =
  /** Verification allowed it: Apace paid the customer. */
  | 'paid'
  | 'card_mismatch'
  /** The merchant's verification did not answer `allow_refund` truthy. */
  | 'declined'
  /** The merchant answered `refund_issued: true`: the offer is closed as refunded by the vendor. */
  | 'refunded_by_vendor'
  /** No such offer, expired, canceled or already paid. */
  | 'unavailable';

export interface VerificationCall {
  readonly phase: 'create' | 'payout';
  readonly merchantRefundId?: string;
  readonly answer?: unknown;
  readonly error?: string;
}

export interface WebhookDelivery {
  readonly apaceRefundId: string;
  readonly event: 'pending' | 'processed' | 'failed';
  readonly trial: number;
  readonly status?: number;
  readonly error?: string;
}

export interface SimOfferView {
  readonly apaceRefundId: string;
  /** `order_id` as the customer sees it on the offer. */
  readonly orderId: string;
  readonly itemIds: readonly string[];
  readonly status: ApaceSimStatus;
  readonly merchantRefundId?: string;
  readonly orderUrl?: string;
  readonly redirectUrl?: string;
  readonly itemUrls: Readonly<Record<string, string>>;
  readonly customerEmail?: string;
  readonly emailSentAt?: string;
}

/** One Send Refund Offer Email request and Apace's answer to it. */
export interface EmailRequest {
  readonly apaceRefundId: string;
  readonly status: number;
  /** The customer's address when Apace sent the e-mail. */
  readonly sentTo?: string;
}

/**
 * How the next Send Refund Offer Email requests fail: Apace down (503), Apace's 4012 (no customer
 * e-mail on the offer), or `answer_lost`: Apace sends the e-mail and answers only after `lostAnswerMs`,
 * later than any client waits.
 */
export type EmailFailure = 'unavailable' | 'no_customer_email' | 'answer_lost';

export interface ApaceSimulator extends Simulator {
  customerAccepts(apaceRefundId: string, cardLastFour: string): Promise<CustomerOutcome>;
  /** The payout under way completes now; false when the offer has none under way. */
  payoutProcessed(apaceRefundId: string): Promise<boolean>;
  /** The payout under way fails; false when the offer has none under way. */
  payoutFails(apaceRefundId: string): Promise<boolean>;
  /** Delivers `event` again as Apace's retry would, with `refund_status` as first sent. */
  redeliver(apaceRefundId: string, event: WebhookDelivery['event']): Promise<void>;
  /** Payouts per Apace offer id (`payouts()` counts per merchant refund id). */
  payoutsByOffer(): ReadonlyMap<string, number>;
  offers(): readonly SimOfferView[];
  verificationCalls(): readonly VerificationCall[];
  webhookDeliveries(): readonly WebhookDelivery[];
  /** Every Send Refund Offer Email request, in order: Apace e-mails the customer on each one it answers 200. */
  emailRequests(): readonly EmailRequest[];
  /** The next `count` e-mail requests fail as `failure` (a test's knob; Infinity for every one). */
  failEmails(count: number, failure?: EmailFailure, lostAnswerMs?: number): void;
  /** Clears pending webhook and payout timers and aborts calls in flight. */
  close(): void;
}

/** Apace's constant (utils/Constants.js): a webhook event is tried at most this often. */
export const MAXIMUM_TRIALS = 4;
const MAX_FAILED_AUTHS = 3;
const LIVE: ReadonlySet<ApaceSimStatus> = new Set(['initialized', 'viewed', 'receiverVerified']);
const UNCANCELLABLE: ReadonlySet<ApaceSimStatus> = new Set(['pending', 'processed', 'failed']);
const ENDED: ReadonlySet<ApaceSimStatus> = new Set(['failed', 'processed', 'canceled']);
const DUPLICATE_MESSAGE =
  "There's already a refund request made to this product, order from this vendor, and it is not due yet or refunded. Please wait until it's refunded or it become canceled.";
const CUSTOMER_LINK_BASE = 'https://customer.apacerefunds.com/refunds/process/en/create_refund';
const MERCHANT_LINK_BASE = 'https://merchant.apacerefunds.com/app/refund';

interface SimItem {
  readonly itemId: string;
  readonly displayName: string;
  readonly sku?: string;
  readonly itemUrl?: string;
  readonly itemImageUrl?: string;
  readonly returnDate?: string;
  readonly unitPrice: number | null;
  readonly returnQty: number | null;
}

interface SimOffer {
  readonly id: string;
  readonly refundNumber: number;
  readonly apiKey: ApaceApiKey;
  readonly orderId: string;
  readonly productIds: readonly string[];
  readonly amount: number;
  readonly cardLastFour: string;
  readonly expirationDate: Date;
  readonly createdAt: Date;
  readonly customerEmail: string;
  readonly customerFName: string;
  readonly customerLName: string;
  readonly orderDate?: string;
  readonly orderUrl?: string;
  readonly redirectUrl?: string;
  readonly isPartialRefund: boolean;
  readonly refundLink: string;
  readonly items: readonly SimItem[];
  readonly verification: { readonly url: string; readonly method: string };
  readonly webhookUrl: string;
  readonly merchantRefundId?: string;
  status: ApaceSimStatus;
  lastUpdated: Date;
  refundDate: Date | null;
  emailSentAt: Date | null;
  refundDepositedAt: Date | null;
  cardLastFourVerified: boolean;
  card?: { readonly lastFour: string; readonly network: string };
  transactionId?: string;
}

type Json = Record<string, unknown>;

const json = (status: number, body: unknown): SimResponse => ({ status, body });
const validationError = (messages: readonly string[]): SimResponse =>
  json(400, { refund_created: false, errors: messages.map((message) => ({ error_code: 5001, error_message: message })) });

// express-validator turns a value into a string before a standard check (null and undefined become '').
function asText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(asText).join(',');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return '[object Object]';
}

const isInt = (value: unknown) => /^[-+]?[0-9]+$/.test(asText(value));
const isNumeric = (value: unknown) => /^[+-]?([0-9]*[.])?[0-9]+$/.test(asText(value));
const isFloat = (value: unknown) => {
  const text = asText(value);
  return !['', '.', '+', '-'].includes(text) && /^[-+]?[0-9]*(\.[0-9]*)?([eE][-+]?[0-9]+)?$/.test(text);
};
const isBoolean = (value: unknown) => ['true', 'false', '1', '0'].includes(asText(value));
const isEmail = (value: unknown) => /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/.test(asText(value));
const isMethod = (value: unknown) => typeof value === 'string' && /\b(?:GET|POST|PUT|DELETE)\b/i.test(value);

function isUsDate(value: unknown): boolean {
  const match = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(asText(value));
  if (!match) return false;
  const [month, day, year] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

function isIPv4(host: string): boolean {
  const parts = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return parts !== null && parts.slice(1).every((part) => Number(part) <= 255);
}

/** validator.js `isURL()` defaults: http, https or ftp; the host an IP address or a name with a TLD. */
function isUrl(value: unknown): boolean {
  const text = asText(value);
  if (!text || text.length >= 2083 || /[\s<>]/.test(text)) return false;
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    return false;
  }
  if (!['http:', 'https:', 'ftp:'].includes(url.protocol)) return false;
  const host = url.hostname;
  if (isIPv4(host) || host.startsWith('[')) return true;
  const labels = host.split('.');
  const tld = labels[labels.length - 1] ?? '';
  return (
    labels.length >= 2 &&
    /^([a-z\u00a1-\uffff]{2,}|xn[a-z0-9-]{2,})$/i.test(tld) &&
    labels.every((label) => /^[a-z\u00a1-\uffff0-9-]{1,63}$/i.test(label) && !label.startsWith('-') && !label.endsWith('-'))
  );
}

function field(body: Json, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value && typeof value === 'object' ? (value as Json)[key] : undefined), body);
}

/** external.validator.js `validateNewRefund`: every failed check, as `<param>: <message>`. */
function validateCreate(body: Json, now: number): string[] {
  const errors: string[] = [];
  const check = (param: string, value: unknown, valid: boolean, message = 'Invalid value') => {
    if (!valid) errors.push(`${param}: ${message}`);
  };
  // Optional means absent: a null is validated like any other value.
  const optional = (param: string, test: (value: unknown) => boolean, message?: string, value = field(body, param)) => {
    if (value !== undefined) check(param, value, test(value), message);
  };
  const required = (param: string, test: (value: unknown) => boolean, message?: string, value = field(body, param)) =>
    check(param, value, test(value), message);
  const isString = (value: unknown) => typeof value === 'string';

  required('card_last_four', isInt, 'Please provide an integer for cardLastFour');
  optional('customer', (value) => typeof value === 'object' && value !== null && !Array.isArray(value), 'Please provide an object for customer');
  optional('customer.email', isEmail, 'Please provide an email for customer.email');
  optional('customer.first_name', isString, 'Please provide a string for customer.first_name');
  optional('customer.last_name', isString, 'Please provide a string for customer.last_name');
  required('order_id', isString, 'Please provide a valid string for order_id');
  optional('order_url', isUrl, 'Please provide a valid url for order_url');
  optional('order_date', isUsDate, 'Please provide a valid date form order_date in MM/DD/YYYY format');
  optional(
    'expiration_date',
    (value) => {
      const date = new Date(value as string);
      return !Number.isNaN(date.getTime()) && Math.floor(date.getTime() / 1000) > Math.floor(now / 1000);
    },
    'Please provide valid expiration_date',
  );
  optional('is_partial_refund', isBoolean, 'Please provide a valid number for is_partial_refund');
  required('refund_amount', isNumeric);
  if (isNumeric(body.refund_amount)) required('refund_amount', (value) => Number.parseFloat(asText(value)) !== 0, 'Please provide a valid number for amount');
  required('items', Array.isArray, 'Please provide an array of items');
  if (Array.isArray(body.items)) {
    body.items.forEach((item: unknown, index) => {
      const at = (name: string) => ({ param: `items[${index}].${name}`, value: item && typeof item === 'object' ? (item as Json)[name] : undefined });
      const each = (name: string, test: (value: unknown) => boolean, message: string | undefined, isOptional: boolean) => {
        const { param, value } = at(name);
        if (isOptional) optional(param, test, message, value);
        else required(param, test, message, value);
      };
      each('item_id', isString, 'Please provide valid string of items.item_id', false);
      each('sku', isString, 'Please provide a string for items.sku', true);
      each('item_url', isUrl, 'Please provide a valid url for items.url', true);
      each('item_image_url', isUrl, 'Please provide a valid url for items.url', true);
      each('display_name', isString, 'Please provide a valid string for items.display_name', false);
      each('return_date', isUsDate, undefined, true);
      each('unit_price', isFloat, 'Please provide a valid float for unit_price', true);
      each('return_qty', isInt, 'Please provide a valid integer for items.return_qty', true);
    });
  }
  required('refund_verification.url', isUrl, 'Please provide a valid url for refund_verification.url');
  optional('refund_verification.method', isMethod, 'Please provide a valid value of refund_verification.method one of GET|POST|PUT|DELETE');
  required('refund_notification.webhook_url', isUrl, 'Please provide a valid url for refund_notification.webhook_url');
  optional('refund_notification.redirect_url', isUrl, 'Please provide a valid url for refund_notification.redirect_url');
  optional('refund_notification.redirect_method', isMethod, 'Please provide a valid value of refund_notification.redirect_method one of GET|POST|PUT|DELETE');
  return errors;
}

/** Our refund id from a callback URL shaped `…/refunds/{refundId}/…`, the key of the payout counts. */
function merchantRefundIdOf(...urls: string[]): string | undefined {
  for (const url of urls) {
    try {
      const match = /\/refunds\/([^/]+)\//.exec(new URL(url).pathname);
      if (match?.[1]) return decodeURIComponent(match[1]);
    } catch {
      continue;
    }
  }
  return undefined;
}

const optionalText = (value: unknown) => (typeof value === 'string' && value ? value : undefined);
const floatOrNull = (value: unknown) => (value === undefined || value === null ? null : Number.parseFloat(asText(value)));

export function createApaceSimulator(options: ApaceSimulatorOptions): ApaceSimulator {
  const vendorId = options.vendorId ?? '17';
  const lockoutMs = options.lockoutMs ?? 5 * 60 * 1000;
  const processedDelayMs = options.processedDelayMs ?? 20_000;
  const webhookRetryGapMs = options.webhookRetryGapMs ?? 30 * 60 * 1000;
  const callbackTimeoutMs = options.callbackTimeoutMs ?? 10_000;

  const offers = new Map<string, SimOffer>();
  const failedAuths = new Map<string, { count: number; last: number }>();
  const payoutsByMerchantRef = new Map<string, number>();
  const payoutsByOffer = new Map<string, number>();
  const verifications: VerificationCall[] = [];
  const deliveries: WebhookDelivery[] = [];
  const emails: EmailRequest[] = [];
  let emailFailures = { count: 0, failure: 'unavailable' as EmailFailure, lostAnswerMs: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<AbortController>();
  let closed = false;

  const later = (ms: number, run: () => Promise<void>) => {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      void run();
    }, ms);
    timer.unref();
    timers.add(timer);
  };

  async function callMerchant(url: string, init: RequestInit): Promise<Response> {
    const controller = new AbortController();
    inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(), callbackTimeoutMs);
    try {
      return await fetch(url, { ...init, signal: controller.signal });
    } finally {
      clearTimeout(timer);
      inFlight.delete(controller);
    }
  }

  /** A bare request without body or auth headers, as Apace's `axios[method](url)`; undefined when it fails. */
  async function askVerification(phase: VerificationCall['phase'], url: string, method: string): Promise<Json | undefined> {
    const merchantRefundId = merchantRefundIdOf(url);
    try {
      const response = await callMerchant(url, { method: method.toUpperCase() });
      const text = await response.text();
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      let answer: unknown = text;
      try {
        answer = JSON.parse(text);
      } catch {
        // axios keeps a non-JSON body as a string, which has no `allow_refund` key.
      }
      verifications.push({ phase, ...(merchantRefundId && { merchantRefundId }), answer });
      return answer !== null && typeof answer === 'object' ? (answer as Json) : {};
    } catch (error) {
      verifications.push({ phase, ...(merchantRefundId && { merchantRefundId }), error: (error as Error).message });
      return undefined;
    }
  }

  function webhookBody(offer: SimOffer, asStatus: ApaceSimStatus = offer.status): Json {
    // Built when sent, from the offer as it is then (consumers/refundWebhook.js); a replayed event
    // carries the status it was first built with.
    return {
      refund_success: asStatus === 'processed',
      refund_status: asStatus,
      refund_id: offer.id,
      date_created: offer.createdAt.toISOString(),
      datetime_refund_sent: offer.refundDepositedAt?.toISOString() ?? null,
      apace_refund_link: `${MERCHANT_LINK_BASE}/${offer.id}`,
      order_id: offer.orderId,
      item_ids: offer.productIds,
      refund_card: `**** **** ***** ${offer.card?.lastFour ?? ''}`,
      network: offer.card?.network ?? null,
      network_transaction_id: offer.transactionId ?? null,
    };
  }

  async function deliverWebhook(offer: SimOffer, event: WebhookDelivery['event'], trial: number, asStatus?: ApaceSimStatus): Promise<void> {
    if (closed) return;
    const body = JSON.stringify(webhookBody(offer, asStatus));
    let delivered = false;
    try {
      const response = await callMerchant(offer.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [APACE_SIGNATURE_HEADER]: signApaceBody(offer.apiKey.apiSecret, body) },
        body,
      });
      await response.arrayBuffer();
      delivered = response.status < 300;
      deliveries.push({ apaceRefundId: offer.id, event, trial, status: response.status });
    } catch (error) {
      deliveries.push({ apaceRefundId: offer.id, event, trial, error: (error as Error).message });
    }
    if (!delivered && trial < MAXIMUM_TRIALS) later(webhookRetryGapMs, () => deliverWebhook(offer, event, trial + 1, asStatus));
  }

  function authenticate(request: SimRequest): ApaceApiKey | SimResponse {
    const now = Date.now();
    const record = failedAuths.get(request.sourceIp);
    if (record && record.count >= MAX_FAILED_AUTHS) {
      if (now - record.last < lockoutMs) {
        return json(429, { success: false, message: 'Too many wrong auth requests, please wait before retrying' });
      }
      failedAuths.delete(request.sourceIp);
    }
    const publicId = request.headers['apace-public-id'];
    const secret = request.headers['apace-secret'];
    const key = options.apiKeys.find((candidate) => candidate.publicId === publicId && candidate.apiSecret === secret);
    if (key) return key;
    const previous = failedAuths.get(request.sourceIp);
    const stale = !previous || now - previous.last >= lockoutMs;
    failedAuths.set(request.sourceIp, { count: stale ? 1 : previous.count + 1, last: now });
    return json(401, { success: false, message: 'Not authorized vendor, please check your api key id/secret' });
  }

  const isExpired = (offer: SimOffer, now: number) => offer.expirationDate.getTime() < now && !['processed', 'pending'].includes(offer.status);

  async function create(request: SimRequest, apiKey: ApaceApiKey): Promise<SimResponse> {
    let body: Json = {};
    if ((request.headers['content-type'] ?? '').includes('application/json') && request.body.length > 0) {
      try {
        const parsed = JSON.parse(request.body.toString('utf8')) as unknown;
        body = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Json) : {};
      } catch (error) {
        // The body parser's error reaches Apace's catch-all error handler.
        return json(500, { message: (error as Error).message });
      }
    }
    const now = Date.now();
    const errors = validateCreate(body, now);
    if (errors.length > 0) return validationError(errors);

    const verification = body.refund_verification as Json;
    const notification = body.refund_notification as Json;
    const verificationUrl = String(verification.url);
    const method = optionalText(verification.method)?.toLowerCase() ?? 'get';
    const answer = await askVerification('create', verificationUrl, method);
    if (!answer || !Object.keys(answer).includes('allow_refund')) {
      return validationError(['refund_verification.url does not return the correct response']);
    }

    const orderId = String(body.order_id);
    const items = (body.items as Json[]).map((item): SimItem => ({
      itemId: String(item.item_id),
      displayName: String(item.display_name),
      ...(optionalText(item.sku) && { sku: optionalText(item.sku) }),
      ...(optionalText(item.item_url) && { itemUrl: optionalText(item.item_url) }),
      ...(optionalText(item.item_image_url) && { itemImageUrl: optionalText(item.item_image_url) }),
      ...(optionalText(item.return_date) && { returnDate: optionalText(item.return_date) }),
      unitPrice: floatOrNull(item.unit_price),
      returnQty: item.return_qty === undefined || item.return_qty === null ? null : Number.parseInt(asText(item.return_qty), 10),
    }));
    const productIds = items.map((item) => item.itemId);
    const duplicate = [...offers.values()].some(
      (offer) =>
        offer.orderId === orderId &&
        offer.productIds.some((id) => productIds.includes(id)) &&
        offer.expirationDate.getTime() >= now &&
        !ENDED.has(offer.status) &&
        !isExpired(offer, now),
    );
    if (duplicate) return validationError([DUPLICATE_MESSAGE]);

    const id = randomUUID();
    const customer = (body.customer ?? {}) as Json;
    const webhookUrl = String(notification.webhook_url);
    const merchantRefundId = merchantRefundIdOf(verificationUrl, webhookUrl);
    const createdAt = new Date(now);
    const offer: SimOffer = {
      id,
      refundNumber: 1000 + offers.size,
      apiKey,
      orderId,
      productIds,
      // Decimal(10,2) in Apace's database.
      amount: Math.round(Number.parseFloat(asText(body.refund_amount)) * 100) / 100,
      cardLastFour: asText(body.card_last_four),
      expirationDate: body.expiration_date === undefined ? new Date(now + 10 * 24 * 3600 * 1000) : new Date(body.expiration_date as string),
      createdAt,
      customerEmail: optionalText(customer.email) ?? '',
      customerFName: optionalText(customer.first_name) ?? '',
      customerLName: optionalText(customer.last_name) ?? '',
      ...(optionalText(body.order_date) && { orderDate: optionalText(body.order_date) }),
      ...(optionalText(body.order_url) && { orderUrl: optionalText(body.order_url) }),
      ...(optionalText(notification.redirect_url) && { redirectUrl: optionalText(notification.redirect_url) }),
      isPartialRefund: asText(body.is_partial_refund) === 'true',
      refundLink: `${CUSTOMER_LINK_BASE}/${randomBytes(24).toString('base64url')}?refund_id=${id}&vendor_id=${vendorId}`,
      items,
      verification: { url: verificationUrl, method },
      webhookUrl,
      ...(merchantRefundId && { merchantRefundId }),
      status: 'initialized',
      lastUpdated: createdAt,
      refundDate: null,
      emailSentAt: null,
      refundDepositedAt: null,
      cardLastFourVerified: false,
    };
    offers.set(id, offer);
    return json(200, { refund_created: true, refund_link: offer.refundLink, refund_id: id, active_until: offer.expirationDate.toISOString() });
  }

  function listEntry(offer: SimOffer, now: number): Json {
    return {
      id: offer.id,
      refundNumber: offer.refundNumber,
      amount: offer.amount,
      status: offer.status,
      createdAt: offer.createdAt.toISOString(),
      expired: isExpired(offer, now),
      lastUpdated: offer.lastUpdated.toISOString(),
      isPartialRefund: offer.isPartialRefund,
      customer: null,
      customerEmail: offer.customerEmail,
      customerFName: offer.customerFName,
      customerLName: offer.customerLName,
      invoice: null,
    };
  }

  function details(offer: SimOffer, now: number): Json {
    return {
      ...listEntry(offer, now),
      orderUrl: offer.orderUrl ?? null,
      // Where Apace keeps `refund_notification.redirect_url` in its details is UNCONFIRMED (docs/providers.md §1).
      redirectUrl: offer.redirectUrl ?? null,
      vendorId,
      productIds: offer.productIds,
      orderId: offer.orderId,
      disabled: false,
      refundDate: offer.refundDate?.toISOString() ?? null,
      expirationDate: offer.expirationDate.toISOString(),
      refundLink: offer.refundLink,
      emailSentAt: offer.emailSentAt?.toISOString() ?? null,
      refundDepositedAt: offer.refundDepositedAt?.toISOString() ?? null,
      transaction: offer.transactionId ? { transactionId: offer.transactionId, status: offer.status } : null,
      refundItems: offer.items.map((item, index) => ({ id: index + 1, refundId: offer.id, ...item })),
      cardLastFour: offer.cardLastFour,
      cardLastFourVerified: offer.cardLastFourVerified,
      customerCard: offer.card ?? null,
    };
  }

  /** refund.service.js `getVendorRefunds`: newest first, page-number cursor, dates filter `refundDate`. */
  function list(request: SimRequest): SimResponse {
    const now = Date.now();
    const pageLength = Number.parseInt(request.query.get('pageLength') ?? '', 10) || 50;
    const cursor = Math.max(Number.parseInt(request.query.get('cursor') ?? '', 10) || 1, 1);
    const statuses = request.query.getAll('status');
    const from = request.query.get('fromDate');
    const to = request.query.get('toDate');
    const matching = [...offers.values()]
      .filter((offer) => statuses.length === 0 || statuses.includes(offer.status))
      .filter((offer) => !from || (offer.refundDate !== null && offer.refundDate >= new Date(from)))
      .filter((offer) => !to || (offer.refundDate !== null && offer.refundDate <= new Date(to)))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.refundNumber - a.refundNumber);
    const totalPages = Math.ceil(matching.length / pageLength);
    const refunds = matching.slice((cursor - 1) * pageLength, cursor * pageLength).map((offer) => listEntry(offer, now));
    return json(200, { success: true, refunds, nextCursor: totalPages > cursor ? cursor + 1 : null, totalCount: matching.length, totalPages });
  }

  async function sendEmail(id: string, offer: SimOffer | undefined): Promise<SimResponse> {
    const injected = emailFailures.count > 0 ? emailFailures.failure : undefined;
    if (injected) emailFailures = { ...emailFailures, count: emailFailures.count - 1 };
    const answer = emailAnswer(offer, injected);
    emails.push({ apaceRefundId: id, status: answer.status, ...(answer.status === 200 && offer && { sentTo: offer.customerEmail }) });
    if (injected === 'answer_lost') await new Promise((resolve) => setTimeout(resolve, emailFailures.lostAnswerMs).unref());
    return answer;
  }

  function emailAnswer(offer: SimOffer | undefined, injected: EmailFailure | undefined): SimResponse {
    if (injected === 'unavailable') return json(503, { success: false, message: 'Service unavailable' });
    if (!offer) return validationError(['Invalid refund id']);
    if (!offer.customerEmail || injected === 'no_customer_email') {
      return json(400, { email_sent: false, errors: { error_code: 4012, error_message: 'The refund does not have customer email associated with it' } });
    }
    // Not idempotent: every accepted request e-mails the customer again.
    offer.emailSentAt = new Date();
    return json(200, { email_sent: true });
  }

  function cancel(offer: SimOffer | undefined): SimResponse {
    // An unknown offer and one with a payout under way get the same refusal (external.service.js).
    if (!offer || UNCANCELLABLE.has(offer.status)) return validationError(['Cannot cancel refund at this time']);
    offer.status = 'canceled';
    offer.lastUpdated = new Date();
    return json(200, { success: true, canceled: true });
  }

  function recordPayout(offer: SimOffer): void {
    const key = offer.merchantRefundId ?? offer.id;
    payoutsByMerchantRef.set(key, (payoutsByMerchantRef.get(key) ?? 0) + 1);
    payoutsByOffer.set(offer.id, (payoutsByOffer.get(offer.id) ?? 0) + 1);
  }

  async function customerAccepts(apaceRefundId: string, cardLastFour: string): Promise<CustomerOutcome> {
    const offer = offers.get(apaceRefundId);
    if (!offer || !LIVE.has(offer.status) || isExpired(offer, Date.now())) return 'unavailable';
    if (offer.status === 'initialized') offer.status = 'viewed';
    if (cardLastFour !== offer.cardLastFour) return 'card_mismatch';
    offer.cardLastFourVerified = true;
    if (offer.status === 'viewed') offer.status = 'receiverVerified';

    // Apace asks the merchant right before paying (refund.service.js `isRefundEnabledByVendor`).
    const answer = await askVerification('payout', offer.verification.url, offer.verification.method);
    if (!answer?.allow_refund) {
      if (answer?.refund_issued) {
        offer.status = 'refundByVendor';
        offer.lastUpdated = new Date();
        return 'refunded_by_vendor';
      }
      return 'declined';
    }
    if (options.payoutDelayMs) await new Promise((resolve) => setTimeout(resolve, options.payoutDelayMs));
    // The status moves receiverVerified → pending only once, so a concurrent claim cannot pay twice.
    // The pessimistic Apace finishes a payout it approved, whatever happened to the offer since.
    const pessimistic = options.honoursLateCancel === false;
    const payable = pessimistic
      ? offer.status === 'receiverVerified' || offer.status === 'canceled'
      : offer.status === 'receiverVerified' && !isExpired(offer, Date.now());
    if (!payable) return 'unavailable';
    const now = new Date();
    offer.status = 'pending';
    offer.refundDate = now;
    offer.lastUpdated = now;
    offer.card = { lastFour: cardLastFour, network: 'VISA' };
    offer.transactionId = randomBytes(8).toString('hex');
    recordPayout(offer);
    void deliverWebhook(offer, 'pending', 1);
    later(processedDelayMs, async () => {
      await payoutProcessed(offer.id);
    });
    return 'paid';
  }

  /** The payout under way reaches the customer now (otherwise `processedDelayMs` after it started). */
  async function payoutProcessed(apaceRefundId: string): Promise<boolean> {
    const offer = offers.get(apaceRefundId);
    if (offer?.status !== 'pending') return false;
    offer.status = 'processed';
    offer.refundDepositedAt = new Date();
    offer.lastUpdated = offer.refundDepositedAt;
    await deliverWebhook(offer, 'processed', 1);
    return true;
  }

  /** The card network declines the payout under way: the offer fails for good and the `failed` webhook goes out. */
  async function payoutFails(apaceRefundId: string): Promise<boolean> {
    const offer = offers.get(apaceRefundId);
    if (offer?.status !== 'pending') return false;
    offer.status = 'failed';
    offer.lastUpdated = new Date();
    await deliverWebhook(offer, 'failed', 1);
    return true;
  }

  /** Apace retries an event it believes undelivered (≥ 30 min later), with the body it first built. */
  async function redeliver(apaceRefundId: string, event: WebhookDelivery['event']): Promise<void> {
    const offer = offers.get(apaceRefundId);
    if (offer) await deliverWebhook(offer, event, 2, event);
  }

  async function handle(request: SimRequest): Promise<SimResponse> {
    const control = /^\/_customer\/([^/]+)\/accept$/.exec(request.path);
    if (control && request.method === 'POST') {
      let card: unknown;
      try {
        card = (JSON.parse(request.body.toString('utf8') || '{}') as Json).card_last_four;
      } catch {
        card = undefined;
      }
      if (typeof card !== 'string') return json(400, { error: 'body must be {"card_last_four": "1234"}' });
      return json(200, { outcome: await customerAccepts(decodeURIComponent(control[1]!), card) });
    }

    const route = /^\/ext\/refunds(?:\/([^/]+))?(?:\/(email|cancel))?\/?$/.exec(request.path);
    if (!route) return json(404, `Cannot ${request.method} ${request.path}`);
    const [, rawId, action] = route;
    const id = rawId === undefined ? undefined : decodeURIComponent(rawId);
    const expected = id === undefined ? ['GET', 'POST'] : action ? ['POST'] : ['GET'];
    if (!expected.includes(request.method)) return json(404, `Cannot ${request.method} ${request.path}`);

    const apiKey = authenticate(request);
    if ('status' in apiKey) return apiKey;
    if (id === undefined) return request.method === 'POST' ? create(request, apiKey) : list(request);
    const offer = offers.get(id);
    if (action === 'email') return sendEmail(id, offer);
    if (action === 'cancel') return cancel(offer);
    if (!offer) return json(404, { success: false, message: 'This refund is not found' });
    return json(200, { success: true, refundData: details(offer, Date.now()) });
  }

  return {
    name: 'apace',
    handle,
    payouts: () => payoutsByMerchantRef,
    payoutsByOffer: () => payoutsByOffer,
    customerAccepts,
    payoutFails,
    payoutProcessed,
    redeliver,
    offers: () =>
      [...offers.values()].map((offer) => ({
        apaceRefundId: offer.id,
        orderId: offer.orderId,
        itemIds: offer.productIds,
        status: offer.status,
        ...(offer.merchantRefundId && { merchantRefundId: offer.merchantRefundId }),
        ...(offer.orderUrl && { orderUrl: offer.orderUrl }),
        ...(offer.redirectUrl && { redirectUrl: offer.redirectUrl }),
        itemUrls: Object.fromEntries(offer.items.flatMap((item) => (item.itemUrl ? [[item.itemId, item.itemUrl]] : []))),
        ...(offer.customerEmail && { customerEmail: offer.customerEmail }),
        ...(offer.emailSentAt && { emailSentAt: offer.emailSentAt.toISOString() }),
      })),
    verificationCalls: () => verifications,
    webhookDeliveries: () => deliveries,
    emailRequests: () => emails,
    failEmails: (count, failure = 'unavailable', lostAnswerMs = 2_000) => {
      emailFailures = { count, failure, lostAnswerMs };
    },
    close: () => {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const controller of inFlight) controller.abort();
    },
  };
}
