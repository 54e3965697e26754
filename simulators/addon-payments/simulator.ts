import * as z from 'zod/mini';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { toXml, type XmlValue } from '../../lambdas/commons/xml';
import { formatDecimal, money, parseDecimal, type Money } from '../../lambdas/domain/money';
import type { SimRequest, SimResponse, Simulator } from '../kit';
import { REBATE_PATH } from '../../lambdas/providers/addon-payments/client';
import { integrityCheckOf } from '../../lambdas/providers/addon-payments/crypto';
import { decryptRebate, DecryptionError, javaUrlDecode } from './crypto';

/**
 * EPG's H2H rebate for local runs and tests (mount prefix `addon-payments`). It checks what the
 * documented API checks (headers, decryption under the merchant password, integrityCheck over the
 * clear bytes, mandatory fields), refunds seeded original transactions up to their amount, and
 * answers the XML `<response>` of docs/providers.md §4.
 *
 * Choices the facts leave open, made here and not to be relied on as EPG behaviour:
 * - Request-level faults (headers, decryption, integrityCheck, missing fields) get HTTP 400 with a
 *   `<response>` carrying status ERROR, a message and no operation. EPG's real answer is UNCONFIRMED.
 * - A repeated merchantTransactionId returns the first answer unchanged when the request is the same,
 *   and an ERROR without paying when it differs. EPG's real behaviour on a repeat is UNCONFIRMED;
 *   the seed only says the reference "cannot be repeated".
 * - Business refusals are HTTP 200 with an ERROR operation and no respCode (no codes are documented).
 * - In pending mode a rebate is accepted as PENDING and counted as paid: it is never failed later.
 */
export interface OriginalTransaction {
  readonly amount: Money;
  readonly paymentSolution: string;
}

const seedSchema = z.object({
  transactionId: z.string().check(z.minLength(1)),
  amount: z.object({ minor: z.int().check(z.positive()), currency: z.string().check(z.length(3)) }),
  paymentSolution: z._default(z.string(), 'creditcards'),
});

export interface AddonPaymentsSimulatorOptions {
  readonly merchantId: string;
  readonly merchantPassword: string;
  /** Original payments by EPG transactionId. */
  readonly transactions?: Readonly<Record<string, OriginalTransaction>>;
}

type Fields = Readonly<Record<string, string>>;

const ACCEPTED_API_VERSIONS = new Set(['3', '4', '5']);
const MANDATORY = ['amount', 'merchantId', 'merchantTransactionId', 'paymentSolution', 'transactionId'] as const;
const KNOWN_FIELDS = new Set<string>([...MANDATORY, 'description']);
const LATIN1_45 = /^[\x20-\x7E\xA0-\xFF]{1,45}$/;
const AMOUNT = /^\d+(?:\.\d+)?$/;

class RequestRejectedError extends Error {
  override readonly name = 'RequestRejectedError';
}

function header(request: SimRequest, name: string): string | undefined {
  const value = request.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function single(request: SimRequest, name: string): string {
  const values = request.query.getAll(name);
  if (values.length !== 1 || !values[0]) throw new RequestRejectedError(`query parameter ${name} is required once`);
  return values[0];
}

function parseClear(clear: string): Fields {
  const fields: Record<string, string> = {};
  for (const pair of clear.split('&')) {
    const separator = pair.indexOf('=');
    const name = pair.slice(0, separator);
    if (separator < 1 || !KNOWN_FIELDS.has(name) || name in fields)
      throw new RequestRejectedError(`malformed or repeated field in the clear data: ${pair.slice(0, 40)}`);
    try {
      fields[name] = javaUrlDecode(pair.slice(separator + 1));
    } catch {
      throw new RequestRejectedError(`field ${name} is not URL-encoded UTF-8`);
    }
  }
  return fields;
}

function responseXml(status: string, operation?: Readonly<Record<string, XmlValue>>, message?: string): string {
  const operations = operation
    ? `<operations><operation sorted-order="1">${Object.entries(operation)
        .map(([name, value]) => toXml(name, value))
        .join('')}</operation></operations>`
    : '';
  const size = operation ? ' operation-size="1"' : '';
  return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response${size}>${message ? toXml('message', message) : ''}${operations}${toXml('status', status)}</response>`;
}

const xmlAnswer = (status: number, body: string): SimResponse => ({ status, headers: { 'content-type': 'application/xml; charset=utf-8' }, body });

interface Answered {
  readonly sameRequest: string;
  readonly body: string;
}

export class AddonPaymentsSimulator implements Simulator {
  readonly name = 'addon-payments';
  private mode: 'settle' | 'pending' = 'settle';
  private readonly originals = new Map<string, OriginalTransaction & { refundedMinor: number }>();
  private readonly answered = new Map<string, Answered>();
  private readonly paid = new Map<string, number>();
  private readonly accepted: Fields[] = [];
  private nextTransactionId = 7_900_000;

  constructor(private readonly options: AddonPaymentsSimulatorOptions) {
    for (const [transactionId, original] of Object.entries(options.transactions ?? {})) this.seedTransaction(transactionId, original);
  }

  /** `pending`: new rebates are answered PENDING instead of SUCCESS. */
  setMode(mode: 'settle' | 'pending'): void {
    this.mode = mode;
  }

  /** `{transactionId, amount: {minor, currency}, paymentSolution}`: an original payment to refund. */
  seed(record: unknown): void {
    const { transactionId, ...original } = seedSchema.parse(record);
    this.seedTransaction(transactionId, original);
  }

  seedTransaction(transactionId: string, original: OriginalTransaction): void {
    this.originals.set(transactionId, { ...original, refundedMinor: 0 });
  }

  /** The decrypted fields of every request that passed the request-level checks, in order. */
  receivedRequests(): readonly Fields[] {
    return this.accepted;
  }

  payouts(): ReadonlyMap<string, number> {
    return this.paid;
  }

  async handle(request: SimRequest): Promise<SimResponse> {
    if (request.method !== 'POST' || request.path !== REBATE_PATH) return { status: 404, body: { error: `no route ${request.method} ${request.path}` } };
    let fields: Fields;
    try {
      fields = this.authenticate(request);
    } catch (error) {
      if (!(error instanceof RequestRejectedError)) throw error;
      return xmlAnswer(400, responseXml('ERROR', undefined, error.message));
    }
    this.accepted.push(fields);
    const reference = fields.merchantTransactionId!;
    const sameRequest = JSON.stringify([fields.transactionId, fields.amount, fields.paymentSolution]);
    const earlier = this.answered.get(reference);
    if (earlier) {
      if (earlier.sameRequest === sameRequest) return xmlAnswer(200, earlier.body);
      return xmlAnswer(200, this.refusal(fields, 'merchantTransactionId was already used for a different request'));
    }
    const body = this.rebate(fields);
    this.answered.set(reference, { sameRequest, body });
    return xmlAnswer(200, body);
  }

  /** The request-level checks: headers, merchant, decryption, integrity, mandatory fields. */
  private authenticate(request: SimRequest): Fields {
    const apiVersion = header(request, 'apiVersion');
    if (!apiVersion || !ACCEPTED_API_VERSIONS.has(apiVersion)) throw new RequestRejectedError('header apiVersion must be 3, 4 or 5');
    if (header(request, 'encryptionMode') !== 'CBC') throw new RequestRejectedError('header encryptionMode must be CBC');
    const iv = header(request, 'iv');
    if (!iv) throw new RequestRejectedError('header iv is required');
    const merchantId = single(request, 'merchantId');
    if (merchantId !== this.options.merchantId) throw new RequestRejectedError('unknown merchantId');
    let clear: string;
    try {
      clear = decryptRebate(single(request, 'encrypted'), iv, this.options.merchantPassword);
    } catch (error) {
      if (error instanceof DecryptionError) throw new RequestRejectedError(`encrypted cannot be decrypted: ${error.message}`);
      throw error;
    }
    const given = Buffer.from(single(request, 'integrityCheck'), 'utf8');
    const expected = Buffer.from(integrityCheckOf(clear), 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new RequestRejectedError('integrityCheck does not match the encrypted data');
    const fields = parseClear(clear);
    const missing = MANDATORY.find((name) => !fields[name]);
    if (missing) throw new RequestRejectedError(`mandatory field ${missing} is missing`);
    if (fields.merchantId !== merchantId) throw new RequestRejectedError('merchantId in the encrypted data differs from the query');
    if (!LATIN1_45.test(fields.merchantTransactionId!)) throw new RequestRejectedError('merchantTransactionId must be 1 to 45 Latin-1 characters');
    return fields;
  }

  /** Refunds against the original transaction, or answers why not. */
  private rebate(fields: Fields): string {
    const original = this.originals.get(fields.transactionId!);
    if (!original) return this.refusal(fields, `original transaction ${fields.transactionId} not found`);
    if (fields.paymentSolution !== original.paymentSolution) {
      return this.refusal(fields, `paymentSolution ${fields.paymentSolution} does not match the original payment`);
    }
    let amount: Money;
    try {
      if (!AMOUNT.test(fields.amount!)) throw new RangeError('not a plain decimal');
      amount = parseDecimal(fields.amount!, original.amount.currency);
    } catch {
      return this.refusal(fields, `invalid amount ${fields.amount}`);
    }
    const remainingMinor = original.amount.minor - original.refundedMinor;
    if (amount.minor <= 0) return this.refusal(fields, 'amount must be positive');
    if (amount.minor > remainingMinor) {
      return this.refusal(fields, `amount ${formatDecimal(amount)} exceeds the refundable ${formatDecimal(money(remainingMinor, amount.currency))}`);
    }
    original.refundedMinor += amount.minor;
    const reference = fields.merchantTransactionId!;
    this.paid.set(reference, (this.paid.get(reference) ?? 0) + 1);
    const status = this.mode === 'pending' ? 'PENDING' : 'SUCCESS';
    return responseXml(status, {
      amount: formatDecimal(amount),
      currency: amount.currency,
      merchantTransactionId: reference,
      message: status === 'SUCCESS' ? "Success 'Refund' operation" : "Pending 'Refund' operation",
      operationType: 'REFUND',
      originalTransactionId: fields.transactionId,
      paymentSolution: original.paymentSolution,
      remainingAmount: formatDecimal(money(original.amount.minor - original.refundedMinor, amount.currency)),
      status,
      transactionId: String(this.nextTransactionId++),
      respCode: status === 'SUCCESS' ? { code: '0000', message: 'Successful', uuid: randomUUID().replace(/-/g, '_') } : undefined,
    });
  }

  private refusal(fields: Fields, message: string): string {
    return responseXml('ERROR', {
      amount: fields.amount,
      merchantTransactionId: fields.merchantTransactionId,
      message,
      operationType: 'REFUND',
      originalTransactionId: fields.transactionId,
      paymentSolution: fields.paymentSolution,
      status: 'ERROR',
      transactionId: String(this.nextTransactionId++),
    });
  }
}
