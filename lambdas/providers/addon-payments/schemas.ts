import { childElement, childElements, parseXml, XmlError, type XmlElement } from '../../commons/xml';
import * as z from 'zod/mini';
import { describeIssues } from '../../commons/validation';

/**
 * Secret `addonPayments` (JSON). `merchantId` is the numeric merchant code from onboarding (4–7
 * digits, docs/providers.md §4); `merchantPassword` is the 32-character secret whose UTF-8 bytes are the
 * AES-256 key.
 */
export const addonPaymentsSecretSchema = z.object({
  merchantId: z.string().check(z.regex(/^[0-9]{4,7}$/, 'must be the 4 to 7 digit merchant code')),
  merchantPassword: z.string().check(z.refine((password) => Buffer.byteLength(password, 'utf8') === 32, 'must be exactly 32 bytes (the AES-256 key)')),
});

export type AddonPaymentsSecret = z.infer<typeof addonPaymentsSecretSchema>;

/**
 * One `<operation>` of an EPG answer. Values stay text: amounts are only reported, never computed
 * with. Unknown elements are ignored, as the SDK's parser does.
 */
export interface AddonPaymentsOperation {
  /** Upper-cased; SUCCESS, PENDING, REDIRECTED, ERROR and FAIL are documented. */
  readonly status: string;
  readonly operationType?: string;
  readonly transactionId?: string;
  readonly originalTransactionId?: string;
  readonly merchantTransactionId?: string;
  readonly amount?: string;
  readonly currency?: string;
  readonly remainingAmount?: string;
  readonly paymentSolution?: string;
  readonly message?: string;
  readonly respCode?: { readonly code?: string; readonly message?: string; readonly uuid?: string };
}

export interface AddonPaymentsResponse {
  readonly status?: string;
  readonly message?: string;
  /** In processing order: by `sorted-order` in XML, in array order in JSON. The last one decides. */
  readonly operations: readonly AddonPaymentsOperation[];
}

export class AddonPaymentsResponseError extends Error {
  override readonly name = 'AddonPaymentsResponseError';
}

const text = z.string().check(z.maxLength(4096));
const textOrNumber = z.union([text, z.number()]);
const optionalText = z.optional(z.nullable(textOrNumber));

const operationSchema = z.looseObject({
  status: text,
  operationType: optionalText,
  transactionId: optionalText,
  originalTransactionId: optionalText,
  merchantTransactionId: optionalText,
  amount: optionalText,
  currency: optionalText,
  remainingAmount: optionalText,
  paymentSolution: optionalText,
  message: optionalText,
  respCode: z.optional(z.nullable(z.looseObject({ code: optionalText, message: optionalText, uuid: optionalText }))),
});

const responseSchema = z.looseObject({
  status: optionalText,
  message: optionalText,
  operations: z.array(operationSchema).check(z.maxLength(100)),
});

type RawOperation = z.infer<typeof operationSchema>;

const OPERATION_FIELDS = [
  'operationType',
  'transactionId',
  'originalTransactionId',
  'merchantTransactionId',
  'amount',
  'currency',
  'remainingAmount',
  'paymentSolution',
  'message',
] as const;

function present(value: string | number | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = String(value).trim();
  return trimmed === '' ? undefined : trimmed;
}

function normalizeOperation(raw: RawOperation): AddonPaymentsOperation {
  const fields: Record<string, string> = {};
  for (const name of OPERATION_FIELDS) {
    const value = present(raw[name]);
    if (value !== undefined) fields[name] = value;
  }
  const respCode = raw.respCode && {
    ...(present(raw.respCode.code) !== undefined && { code: present(raw.respCode.code) }),
    ...(present(raw.respCode.message) !== undefined && { message: present(raw.respCode.message) }),
    ...(present(raw.respCode.uuid) !== undefined && { uuid: present(raw.respCode.uuid) }),
  };
  return { ...fields, status: raw.status.trim().toUpperCase(), ...(respCode && { respCode }) };
}

function leafTexts(element: XmlElement): Record<string, string | Record<string, string>> {
  const values: Record<string, string | Record<string, string>> = {};
  for (const child of element.children) {
    values[child.name] = child.children.length ? (leafTexts(child) as Record<string, string>) : child.text.trim();
  }
  return values;
}

function fromXml(root: XmlElement): unknown {
  if (root.name !== 'response') throw new AddonPaymentsResponseError(`expected a <response> element, got <${root.name}>`);
  const wrapper = childElement(root, 'operations');
  const elements = wrapper ? childElements(wrapper, 'operation') : [];
  const order = (element: XmlElement) => Number(element.attributes['sorted-order'] ?? NaN);
  // Document order is the fallback when any operation lacks a numeric sorted-order.
  const sorted = elements.every((element) => Number.isFinite(order(element))) ? [...elements].sort((a, b) => order(a) - order(b)) : elements;
  const operations = sorted.map(leafTexts);
  const status = childElement(root, 'status')?.text.trim();
  const message = childElement(root, 'message')?.text.trim();
  return { ...(status !== undefined && { status }), ...(message !== undefined && { message }), operations };
}

function fromJson(source: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch {
    throw new AddonPaymentsResponseError('the body starts like JSON but is not JSON');
  }
  // Like the SDK: the notification is under `response` when that key exists, else the root itself.
  const root = (parsed as { response?: unknown })?.response ?? parsed;
  if (typeof root !== 'object' || root === null) throw new AddonPaymentsResponseError('the JSON answer is not an object');
  const { operationsArray, ...rest } = root as { operationsArray?: unknown };
  return { ...rest, operations: operationsArray ?? [] };
}

/**
 * Reads an EPG answer or status notification: XML `<response>` or JSON with a `response` key,
 * the two forms the SDKs' NotificationAdapter accepts. Throws AddonPaymentsResponseError when it is neither.
 */
export function parseAddonPaymentsResponse(body: string): AddonPaymentsResponse {
  const source = body.trim();
  let raw: unknown;
  try {
    raw = source.startsWith('{') ? fromJson(source) : fromXml(parseXml(source));
  } catch (error) {
    if (error instanceof XmlError) throw new AddonPaymentsResponseError(`the body is not well-formed XML: ${error.message}`);
    throw error;
  }
  const result = responseSchema.safeParse(raw);
  if (!result.success) throw new AddonPaymentsResponseError(`unexpected EPG answer: ${describeIssues(result.error.issues)}`);
  return {
    ...(present(result.data.status) !== undefined && { status: present(result.data.status)!.toUpperCase() }),
    ...(present(result.data.message) !== undefined && { message: present(result.data.message) }),
    operations: result.data.operations.map(normalizeOperation),
  };
}

export function lastOperation(response: AddonPaymentsResponse): AddonPaymentsOperation | undefined {
  return response.operations[response.operations.length - 1];
}

/** What `POST /providers/addon-payments/status` needs from a notification to find and re-check a refund. */
export interface AddonPaymentsStatusNotification {
  /** Our refund id, as we sent it in the rebate. */
  readonly merchantTransactionId: string;
  readonly status: string;
  /** EPG's id of the operation the notification is about. */
  readonly transactionId?: string;
  readonly response: AddonPaymentsResponse;
}

/**
 * Parses an asynchronous status notification. Notifications are unsigned (docs/providers.md §4:
 * UNCONFIRMED), so the result is a hint naming a refund to re-check, never proof of payment.
 */
export function parseStatusNotification(body: string): AddonPaymentsStatusNotification {
  const response = parseAddonPaymentsResponse(body);
  const last = lastOperation(response);
  if (!last) throw new AddonPaymentsResponseError('the notification has no operation');
  if (!last.merchantTransactionId) throw new AddonPaymentsResponseError('the notification names no merchantTransactionId');
  return {
    merchantTransactionId: last.merchantTransactionId,
    status: last.status,
    ...(last.transactionId !== undefined && { transactionId: last.transactionId }),
    response,
  };
}
