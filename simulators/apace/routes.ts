import { randomUUID } from 'node:crypto';
import type { SimRequest, SimResponse } from '../kit';
import { details, hasLiveOffer, itemsOf, listEntry, newOffer, UNCANCELLABLE, type ApaceApiKey, type Json, type SimOffer } from './offers';
import { optionalText, validateCreate } from './validation';
import { merchantRefundIdOf, type MerchantCalls } from './webhooks';
import type { CustomerOutcome } from './payouts';

/**
 * Apace's External API (`/ext/refunds…`) as the simulator serves it: the key pair with the per-IP
 * lockout, create (validated, verified with the merchant, one live offer per order item), list,
 * details, Send Refund Offer Email and cancel; and `/_customer/{id}/accept`, the demo's customer.
 */

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

const MAX_FAILED_AUTHS = 3;
const DUPLICATE_MESSAGE =
  "There's already a refund request made to this product, order from this vendor, and it is not due yet or refunded. Please wait until it's refunded or it become canceled.";

const json = (status: number, body: unknown): SimResponse => ({ status, body });
const validationError = (messages: readonly string[]): SimResponse =>
  json(400, { refund_created: false, errors: messages.map((message) => ({ error_code: 5001, error_message: message })) });

export interface RouteSettings {
  readonly apiKeys: readonly ApaceApiKey[];
  readonly vendorId: string;
  readonly lockoutMs: number;
}

export interface ApaceRoutes {
  readonly handle: (request: SimRequest) => Promise<SimResponse>;
  readonly emails: readonly EmailRequest[];
  readonly failEmails: (count: number, failure: EmailFailure, lostAnswerMs: number) => void;
}

export function createRoutes(
  offers: Map<string, SimOffer>,
  merchant: MerchantCalls,
  customerAccepts: (apaceRefundId: string, cardLastFour: string) => Promise<CustomerOutcome>,
  { apiKeys, vendorId, lockoutMs }: RouteSettings,
): ApaceRoutes {
  const failedAuths = new Map<string, { count: number; last: number }>();
  const emails: EmailRequest[] = [];
  let emailFailures = { count: 0, failure: 'unavailable' as EmailFailure, lostAnswerMs: 0 };

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
    const key = apiKeys.find((candidate) => candidate.publicId === publicId && candidate.apiSecret === secret);
    if (key) return key;
    const previous = failedAuths.get(request.sourceIp);
    const stale = !previous || now - previous.last >= lockoutMs;
    failedAuths.set(request.sourceIp, { count: stale ? 1 : previous.count + 1, last: now });
    return json(401, { success: false, message: 'Not authorized vendor, please check your api key id/secret' });
  }

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
    const answer = await merchant.askVerification('create', verificationUrl, method);
    if (!answer || !Object.keys(answer).includes('allow_refund')) {
      return validationError(['refund_verification.url does not return the correct response']);
    }

    const orderId = String(body.order_id);
    const items = itemsOf(body);
    const productIds = items.map((item) => item.itemId);
    if (hasLiveOffer(offers.values(), orderId, productIds, now)) return validationError([DUPLICATE_MESSAGE]);

    const id = randomUUID();
    const webhookUrl = String(notification.webhook_url);
    const merchantRefundId = merchantRefundIdOf(verificationUrl, webhookUrl);
    const offer = newOffer({
      id,
      refundNumber: 1000 + offers.size,
      apiKey,
      vendorId,
      body,
      orderId,
      items,
      verification: { url: verificationUrl, method },
      webhookUrl,
      merchantRefundId,
      now,
    });
    offers.set(id, offer);
    return json(200, { refund_created: true, refund_link: offer.refundLink, refund_id: id, active_until: offer.expirationDate.toISOString() });
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
    return json(200, { success: true, refundData: details(offer, Date.now(), vendorId) });
  }

  return {
    handle,
    emails,
    failEmails: (count, failure, lostAnswerMs) => {
      emailFailures = { count, failure, lostAnswerMs };
    },
  };
}
