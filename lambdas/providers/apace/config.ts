import { ConfigurationError, parseEnvironment, wholeWithin } from '../../commons/config';
import * as z from 'zod/mini';
import { ITEM_PLACEHOLDERS, ORDER_PLACEHOLDERS, templateProblem, type OfferLinkTemplates } from './offer-links';

/** How long an offer stays open; Apace's own default is 10 days. */
const offerDays = wholeWithin(10, 1, 90);

/**
 * Apace settings (docs/design.md §5). `APACE_API_URL` has no default: the sandbox host
 * `https://sandbox.api.apacepayments.com` appears only in third-party sample code and the
 * production host is UNCONFIRMED (docs/providers.md §1), so each stage must name its host explicitly.
 */
const schema = z.object({
  APACE_API_URL: z.optional(z.url({ protocol: /^https?$/ })),
  /** Hard limit per Apace call. A create also waits for Apace to call our verification URL. */
  APACE_TIMEOUT_MS: wholeWithin(10_000, 100, 60_000),
  APACE_OFFER_DAYS: offerDays,
});

export interface ApaceConfig {
  readonly apiUrl: string;
  readonly timeoutMs: number;
  readonly offerDays: number;
  /**
   * Bounds of the search for an offer whose create answer was lost. Apace lists offers newest
   * first, `pageLength` per page; at most `maxPages` pages are read.
   */
  readonly lookup: { readonly pageLength: number; readonly maxPages: number };
}

export const DEFAULT_LOOKUP = { pageLength: 50, maxPages: 4 } as const;

export function loadApaceConfig(env: NodeJS.ProcessEnv = process.env): ApaceConfig {
  const { APACE_API_URL, APACE_TIMEOUT_MS, APACE_OFFER_DAYS } = parseEnvironment(schema, env, 'Apace ');
  if (!APACE_API_URL) throw new ConfigurationError('APACE_API_URL is not set (the Apace API host of this stage)');
  return { apiUrl: APACE_API_URL.replace(/\/+$/, ''), timeoutMs: APACE_TIMEOUT_MS, offerDays: APACE_OFFER_DAYS, lookup: DEFAULT_LOOKUP };
}

/**
 * The offer length alone, for code that routes refunds to Apace without calling it (the Ap21
 * return intake sets `offerExpiresAt` when it creates the refund).
 */
export function loadApaceOfferDays(env: NodeJS.ProcessEnv = process.env): number {
  return parseEnvironment(z.object({ APACE_OFFER_DAYS: offerDays }), env, 'Apace ').APACE_OFFER_DAYS;
}

/** The expiry to give a new Apace offer (and the refund's `offerExpiresAt`, which verification checks). */
export function offerExpiry(config: Pick<ApaceConfig, 'offerDays'>, now: Date): string {
  return new Date(now.getTime() + config.offerDays * 24 * 3600 * 1000).toISOString();
}

const template = (allowed: readonly string[]) =>
  z.optional(
    z.string().check(
      z.maxLength(2000),
      z.superRefine((text, ctx) => {
        const problem = templateProblem(text, allowed);
        if (problem) ctx.issues.push({ code: 'custom', message: problem, input: text });
      }),
    ),
  );

const offerSchema = z.object({
  /** The customer's order page, e.g. `https://shop.example.com/account/orders/{orderNumber}`. */
  APACE_ORDER_URL_TEMPLATE: template(ORDER_PLACEHOLDERS),
  /** Where Apace sends the customer after the refund. */
  APACE_REDIRECT_URL_TEMPLATE: template(ORDER_PLACEHOLDERS),
  /** An item's page; `{sku}` is the order line's SKU (an item without one gets no link). */
  APACE_ITEM_URL_TEMPLATE: template(ITEM_PLACEHOLDERS),
});

/** The stage's link templates for Apace offers (offer-links.ts); each is validated when the function starts. */
export function loadApaceOfferLinks(env: NodeJS.ProcessEnv = process.env): OfferLinkTemplates {
  const { APACE_ORDER_URL_TEMPLATE, APACE_REDIRECT_URL_TEMPLATE, APACE_ITEM_URL_TEMPLATE } = parseEnvironment(offerSchema, env, 'Apace ');
  return {
    ...(APACE_ORDER_URL_TEMPLATE && { orderUrl: APACE_ORDER_URL_TEMPLATE }),
    ...(APACE_REDIRECT_URL_TEMPLATE && { redirectUrl: APACE_REDIRECT_URL_TEMPLATE }),
    ...(APACE_ITEM_URL_TEMPLATE && { itemUrl: APACE_ITEM_URL_TEMPLATE }),
  };
}

const deliverySchema = z.object({
  /** How a created offer reaches the customer: Apace's Send Refund Offer Email, or an event carrying the link (docs/design.md §2.6). */
  APACE_OFFER_DELIVERY: z._default(z.enum(['email', 'event']), 'email'),
  /** The EventBridge bus offer events go to (event delivery in AWS); without it they are logged (the local runtime). */
  APACE_OFFER_EVENT_BUS: z.optional(z.string().check(z.regex(/^[A-Za-z0-9._/:-]{1,1600}$/))),
  /** Locally: the file offer events are appended to. */
  LOCAL_OFFER_EVENTS_FILE: z.optional(z.string().check(z.minLength(1))),
});

export interface ApaceOfferDeliveryConfig {
  readonly mode: 'email' | 'event';
  readonly eventBus?: string;
  readonly localEventsFile?: string;
}

export function loadApaceOfferDelivery(env: NodeJS.ProcessEnv = process.env): ApaceOfferDeliveryConfig {
  const { APACE_OFFER_DELIVERY, APACE_OFFER_EVENT_BUS, LOCAL_OFFER_EVENTS_FILE } = parseEnvironment(deliverySchema, env, 'Apace ');
  // In Lambda an event must reach the retailer: a log line is no delivery.
  if (APACE_OFFER_DELIVERY === 'event' && !APACE_OFFER_EVENT_BUS && env.AWS_LAMBDA_FUNCTION_NAME)
    throw new ConfigurationError('APACE_OFFER_DELIVERY=event needs APACE_OFFER_EVENT_BUS (the EventBridge bus of offer events)');
  return {
    mode: APACE_OFFER_DELIVERY,
    ...(APACE_OFFER_EVENT_BUS && { eventBus: APACE_OFFER_EVENT_BUS }),
    ...(LOCAL_OFFER_EVENTS_FILE && { localEventsFile: LOCAL_OFFER_EVENTS_FILE }),
  };
}
