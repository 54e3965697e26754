/**
 * The request media types each route with a body accepts. The handlers check them (415 otherwise)
 * and the OpenAPI document lists exactly these (tools/openapi/route-docs.ts), so the two cannot drift.
 */
export const MEDIA_TYPES = {
  json: ['application/json'],
  /** PayPro's IPN. */
  form: ['application/x-www-form-urlencoded'],
  /** EPG status notifications: XML `<response>` or JSON with `response`, the two forms its SDKs read. */
  addonPaymentsStatus: ['application/xml', 'text/xml', 'application/json'],
  /** Pushed `<ReturnOrder>` documents, UTF-8 only. */
  ap21Push: ['text/xml', 'application/xml'],
} as const satisfies Record<string, readonly string[]>;
