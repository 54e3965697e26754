/**
 * The links an Apace offer shows the customer (docs/providers.md §1, create-offer body): the order
 * page (`order_url`), where Apace sends the customer after the refund (`refund_notification.redirect_url`)
 * and each item's page (`items[].item_url`). Each is a stage template with placeholders, so the
 * retailer's shop decides the shape; a link whose template is not set is left out of the offer.
 */
export interface OfferLinkTemplates {
  readonly orderUrl?: string;
  readonly redirectUrl?: string;
  readonly itemUrl?: string;
}

/** What a template may name: the order number the customer knows, and for an item its SKU. */
export const ORDER_PLACEHOLDERS = ['orderNumber'] as const;
export const ITEM_PLACEHOLDERS = ['orderNumber', 'sku'] as const;

const PLACEHOLDER = /\{([^{}]*)\}/g;

/**
 * Why a template cannot make URLs Apace accepts, or undefined when it can. Apace refuses a URL
 * whose host has neither a top-level domain nor an IP address (`localhost`, docs/providers.md §1).
 */
export function templateProblem(template: string, allowed: readonly string[]): string | undefined {
  const named = [...template.matchAll(PLACEHOLDER)].map((match) => match[1] ?? '');
  const unknown = named.filter((name) => !allowed.includes(name));
  if (unknown.length > 0)
    return `unknown placeholder(s) ${unknown.map((name) => `{${name}}`).join(', ')}; allowed: ${allowed.map((name) => `{${name}}`).join(', ')}`;
  let url: URL;
  try {
    url = new URL(template.replace(PLACEHOLDER, 'x1'));
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http(s) URL';
  if (!url.hostname.includes('.') && !url.hostname.includes(':')) return `host ${url.hostname} has no top-level domain (Apace refuses it)`;
  if (/[{}]/.test(url.hostname)) return 'the host must not hold a placeholder';
  return undefined;
}

/** The template with each placeholder replaced by its URL-encoded value; undefined when a value it needs is missing. */
export function fillTemplate(template: string, values: Readonly<Record<string, string | undefined>>): string | undefined {
  let missing = false;
  const url = template.replace(PLACEHOLDER, (_match, name: string) => {
    const value = values[name];
    if (value === undefined || value === '') missing = true;
    return encodeURIComponent(value ?? '');
  });
  return missing ? undefined : url;
}
