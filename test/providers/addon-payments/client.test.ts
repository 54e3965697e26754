import { createCipheriv, randomBytes } from 'node:crypto';
import { SecretReader, SecretUnavailableError } from '../../../lambdas/commons/secrets';
import { money } from '../../../lambdas/domain/money';
import type { PaymentLedger } from '../../../lambdas/domain/order';
import { AddonPaymentsConnector, REBATE_PATH } from '../../../lambdas/providers/addon-payments/client';
import { encryptRebate, integrityCheckOf } from '../../../lambdas/providers/addon-payments/crypto';
import { addonPaymentsSecretSchema, parseAddonPaymentsResponse, type AddonPaymentsSecret } from '../../../lambdas/providers/addon-payments/schemas';
import { AddonPaymentsSimulator } from '../../../simulators/addon-payments/simulator';
import type { ReversalRequest } from '../../../lambdas/providers/reversal';
import { NO_FAULTS, startSimulatorHost, type SimulatorHost } from '../../../simulators/kit';

const PREFIX = 'addon-payments';
const SECRET: AddonPaymentsSecret = { merchantId: '123456', merchantPassword: randomBytes(24).toString('base64url') };

let host: SimulatorHost;
let simulator: AddonPaymentsSimulator;
let sequence = 0;

beforeAll(async () => {
  simulator = new AddonPaymentsSimulator({ merchantId: SECRET.merchantId, merchantPassword: SECRET.merchantPassword });
  // A fixed roll makes every enabled fault fire, and fire after the simulator acted.
  host = await startSimulatorHost({ [PREFIX]: simulator }, { random: () => 0 });
});
afterAll(() => host.close());
afterEach(() => {
  host.setFaults(PREFIX, NO_FAULTS);
  simulator.setMode('settle');
});

function secretReader(secret: unknown): SecretReader<AddonPaymentsSecret> {
  return new SecretReader({ get: async () => secret }, 'addonPayments', addonPaymentsSecretSchema);
}

function connector(options: { timeoutMs?: number; secret?: unknown } = {}): AddonPaymentsConnector {
  const config = { apiUrl: host.baseUrl(PREFIX), timeoutMs: options.timeoutMs ?? 5_000, paymentSolution: 'creditcards' };
  return new AddonPaymentsConnector(config, secretReader(options.secret ?? SECRET));
}

/** A fresh original EPG payment of `capturedMinor` EUR cents, seeded in the simulator. */
function originalPayment(capturedMinor = 3000): PaymentLedger {
  const transactionId = String(7_831_000 + ++sequence);
  simulator.seedTransaction(transactionId, { amount: money(capturedMinor, 'EUR'), paymentSolution: 'creditcards' });
  return { provider: 'addon_payments', transactionId, capturedMinor, reservedMinor: 0, refundedMinor: 0, availableMinor: capturedMinor };
}

function reversal(payment: PaymentLedger, minor: number, overrides: Partial<ReversalRequest> = {}): ReversalRequest {
  return { refundId: `rf-${++sequence}`, orderId: 'ord-1', amount: money(minor, 'EUR'), payment, description: 'Return R-1', ...overrides };
}

const paid = (refundId: string) => host.payouts()[PREFIX]?.[refundId] ?? 0;

describe('Addon Payments rebate over HTTP against the simulator', () => {
  it('refunds the card and sends exactly the documented fields, encrypted', async () => {
    const payment = originalPayment(3000);
    const request = reversal(payment, 1234, { description: 'Return R-1 & exchange=no' });
    const outcome = await connector().submit(request);
    expect(outcome).toEqual({
      kind: 'succeeded',
      providerRef: expect.stringMatching(/^\d+$/),
      detail: expect.stringMatching(/^EPG REFUND SUCCESS; Success 'Refund' operation; respCode 0000 Successful; remaining 17\.66$/),
    });
    expect(simulator.receivedRequests().at(-1)).toEqual({
      amount: '12.3400',
      merchantId: '123456',
      paymentSolution: 'creditcards',
      transactionId: payment.transactionId,
      merchantTransactionId: request.refundId,
      description: 'Return R-1 exchange no',
    });
    expect(paid(request.refundId)).toBe(1);
  });

  it('reports a rebate EPG leaves PENDING as pending', async () => {
    simulator.setMode('pending');
    const request = reversal(originalPayment(), 1000);
    expect(await connector().submit(request)).toMatchObject({
      kind: 'pending',
      providerRef: expect.stringMatching(/^\d+$/),
      detail: expect.stringContaining('PENDING'),
    });
  });

  it('fails permanently, paying nothing, when EPG does not know the original transaction', async () => {
    const payment: PaymentLedger = { ...originalPayment(), transactionId: '999' };
    const request = reversal(payment, 1000);
    expect(await connector().submit(request)).toMatchObject({
      kind: 'failed',
      retryable: false,
      detail: expect.stringContaining('original transaction 999 not found'),
    });
    expect(paid(request.refundId)).toBe(0);
  });

  it('fails permanently on an over-refund across partial refunds, paying only what was refundable', async () => {
    const payment = originalPayment(3000);
    const first = reversal(payment, 2000);
    const second = reversal(payment, 1500);
    expect(await connector().submit(first)).toMatchObject({ kind: 'succeeded' });
    expect(await connector().submit(second)).toMatchObject({
      kind: 'failed',
      retryable: false,
      detail: expect.stringContaining('exceeds the refundable 10.00'),
    });
    expect([paid(first.refundId), paid(second.refundId)]).toEqual([1, 0]);
  });

  it('fails permanently, paying nothing, when encrypted under the wrong merchant password', async () => {
    const request = reversal(originalPayment(), 1000);
    const outcome = await connector({ secret: { ...SECRET, merchantPassword: 'W'.repeat(32) } }).submit(request);
    expect(outcome).toMatchObject({
      kind: 'failed',
      retryable: false,
      detail: expect.stringMatching(/HTTP 400: .*(cannot be decrypted|integrityCheck does not match)/),
    });
    expect(paid(request.refundId)).toBe(0);
  });

  it('fails retryably on a 5xx before EPG acted, and the retry pays once', async () => {
    const request = reversal(originalPayment(), 1000);
    host.setFaults(PREFIX, { failureRate: 1 });
    expect(await connector().submit(request)).toMatchObject({ kind: 'failed', retryable: true, detail: expect.stringContaining('HTTP 503') });
    expect(paid(request.refundId)).toBe(0);
    host.setFaults(PREFIX, NO_FAULTS);
    expect(await connector().submit(request)).toMatchObject({ kind: 'succeeded' });
    expect(paid(request.refundId)).toBe(1);
  });

  it('answers unknown when EPG acts but answers past our deadline, and the retry with the same reference does not pay again', async () => {
    const request = reversal(originalPayment(), 1000);
    host.setFaults(PREFIX, { timeoutRate: 1, hangMs: 1_000 });
    const started = Date.now();
    expect(await connector({ timeoutMs: 250 }).submit(request)).toMatchObject({
      kind: 'unknown',
      detail: expect.stringContaining('did not answer within 250 ms'),
    });
    expect(Date.now() - started).toBeLessThan(900);
    expect(paid(request.refundId)).toBe(1);
    host.setFaults(PREFIX, NO_FAULTS);
    expect(await connector().submit(request)).toMatchObject({ kind: 'succeeded' });
    expect(paid(request.refundId)).toBe(1);
  });

  it('answers unknown when the connection is reset after EPG acted, and the retry returns the first answer without paying again', async () => {
    const request = reversal(originalPayment(), 1000);
    host.setFaults(PREFIX, { resetRate: 1 });
    expect(await connector().submit(request)).toMatchObject({ kind: 'unknown', detail: expect.stringContaining('EPG may have acted') });
    expect(paid(request.refundId)).toBe(1);
    host.setFaults(PREFIX, NO_FAULTS);
    const retried = await connector().submit(request);
    const again = await connector().submit(request);
    expect(retried).toMatchObject({ kind: 'succeeded' });
    expect(again).toEqual(retried);
    expect(paid(request.refundId)).toBe(1);
  });

  it.each<[string, (payment: PaymentLedger) => ReversalRequest, RegExp]>([
    ['a refund id longer than 45 characters', (p) => reversal(p, 100, { refundId: 'r'.repeat(46) }), /never truncated/],
    ['a refund id outside Latin-1', (p) => reversal(p, 100, { refundId: 'rf-€-1' }), /Latin-1/],
    ['a refund id with a field separator', (p) => reversal(p, 100, { refundId: 'rf&amount=1' }), /no & or =/],
    ['a payment without an EPG transaction id', (p) => reversal({ ...p, transactionId: undefined }, 100), /no EPG transaction id/],
    ['a payment taken by another provider', (p) => reversal({ ...p, provider: 'paypro' }, 100), /taken by paypro/],
    ['a zero amount', (p) => reversal(p, 0), /must be positive/],
  ])('refuses %s as a permanent failure without calling EPG', async (_, build, detail) => {
    const before = simulator.receivedRequests().length;
    const request = build(originalPayment());
    expect(await connector().submit(request)).toEqual({ kind: 'failed', retryable: false, detail: expect.stringMatching(detail) });
    expect(simulator.receivedRequests()).toHaveLength(before);
  });

  it('throws, rather than calling EPG, when the secret is malformed', async () => {
    await expect(connector({ secret: { merchantId: '123456', merchantPassword: 'too-short' } }).submit(reversal(originalPayment(), 100))).rejects.toThrow(
      SecretUnavailableError,
    );
  });

  it('answers unknown for status: EPG documents no rebate status query', async () => {
    expect(await connector().status(reversal(originalPayment(), 100))).toMatchObject({
      kind: 'unknown',
      detail: expect.stringContaining('no documented status query'),
    });
  });
});

describe('the Addon Payments simulator checks requests like the documented API', () => {
  const iv = randomBytes(16);
  let payment: PaymentLedger;
  beforeAll(() => {
    payment = originalPayment(5000);
  });

  function encryptClear(clear: string): string {
    const cipher = createCipheriv('aes-256-cbc', Buffer.from(SECRET.merchantPassword), iv);
    return Buffer.concat([cipher.update(clear, 'utf8'), cipher.final()]).toString('base64');
  }

  function rebateFields(refundId: string) {
    return {
      amount: money(100, 'EUR'),
      merchantId: SECRET.merchantId,
      paymentSolution: 'creditcards',
      transactionId: payment.transactionId!,
      merchantTransactionId: refundId,
    };
  }

  async function post(query: Record<string, string>, headers: Record<string, string> = { apiVersion: '5', encryptionMode: 'CBC', iv: iv.toString('base64') }) {
    const response = await fetch(`${host.baseUrl(PREFIX)}${REBATE_PATH}?${new URLSearchParams(query).toString()}`, { method: 'POST', headers, body: '' });
    return { status: response.status, answer: parseAddonPaymentsResponse(await response.text()) };
  }

  it('recomputes the integrityCheck over the decrypted bytes: ours passes, any other is refused', async () => {
    const refundId = `rf-${++sequence}`;
    const request = encryptRebate(rebateFields(refundId), SECRET.merchantPassword, iv);
    const query = { merchantId: SECRET.merchantId, encrypted: request.encrypted };
    const tampered = await post({ ...query, integrityCheck: integrityCheckOf(`${request.clear}&description=x`) });
    expect(tampered).toEqual({ status: 400, answer: { status: 'ERROR', message: 'integrityCheck does not match the encrypted data', operations: [] } });
    expect(paid(refundId)).toBe(0);
    const genuine = await post({ ...query, integrityCheck: request.integrityCheck });
    expect(genuine.status).toBe(200);
    expect(genuine.answer.operations.at(-1)).toMatchObject({ status: 'SUCCESS', merchantTransactionId: refundId, amount: '1.00' });
    expect(paid(refundId)).toBe(1);
  });

  it.each<[string, () => { query?: Record<string, string>; headers?: Record<string, string>; clear?: string }, string]>([
    ['no apiVersion header', () => ({ headers: { encryptionMode: 'CBC', iv: iv.toString('base64') } }), 'header apiVersion must be 3, 4 or 5'],
    ['apiVersion 2', () => ({ headers: { apiVersion: '2', encryptionMode: 'CBC', iv: iv.toString('base64') } }), 'header apiVersion must be 3, 4 or 5'],
    ['encryptionMode ECB', () => ({ headers: { apiVersion: '5', encryptionMode: 'ECB', iv: iv.toString('base64') } }), 'header encryptionMode must be CBC'],
    ['no iv header', () => ({ headers: { apiVersion: '5', encryptionMode: 'CBC' } }), 'header iv is required'],
    ['another merchant', () => ({ query: { merchantId: '654321' } }), 'unknown merchantId'],
    ['no integrityCheck', () => ({ query: { integrityCheck: '' } }), 'query parameter integrityCheck is required once'],
    [
      'a missing mandatory field',
      () => ({ clear: 'amount=1.0000&merchantId=123456&paymentSolution=creditcards&merchantTransactionId=rf-x' }),
      'mandatory field transactionId is missing',
    ],
    [
      'a field it does not know',
      () => ({ clear: 'amount=1.0000&merchantId=123456&paymentSolution=creditcards&transactionId=1&merchantTransactionId=rf-x&foo=1' }),
      'malformed or repeated field in the clear data: foo=1',
    ],
    [
      'a merchantTransactionId over 45 characters',
      () => ({ clear: `amount=1.0000&merchantId=123456&paymentSolution=creditcards&transactionId=1&merchantTransactionId=${'r'.repeat(46)}` }),
      'merchantTransactionId must be 1 to 45 Latin-1 characters',
    ],
  ])('refuses %s with HTTP 400 and pays nothing', async (_, build, message) => {
    const { query = {}, headers, clear = encryptRebate(rebateFields(`rf-${++sequence}`), SECRET.merchantPassword, iv).clear } = build();
    const before = JSON.stringify(host.payouts());
    const answer = await post({ merchantId: SECRET.merchantId, encrypted: encryptClear(clear), integrityCheck: integrityCheckOf(clear), ...query }, headers);
    expect(answer).toEqual({ status: 400, answer: { status: 'ERROR', message, operations: [] } });
    expect(JSON.stringify(host.payouts())).toBe(before);
  });

  it('accepts apiVersion 3 and 4 as well as 5', async () => {
    for (const apiVersion of ['3', '4']) {
      const request = encryptRebate(rebateFields(`rf-${++sequence}`), SECRET.merchantPassword, iv);
      const answer = await post(
        { merchantId: SECRET.merchantId, encrypted: request.encrypted, integrityCheck: request.integrityCheck },
        { apiVersion, encryptionMode: 'CBC', iv: iv.toString('base64') },
      );
      expect(answer.answer.operations.at(-1)?.status).toBe('SUCCESS');
    }
  });

  it('refuses a merchantTransactionId reused for a different request, without paying', async () => {
    const refundId = `rf-${++sequence}`;
    const send = (minor: number) => {
      const request = encryptRebate({ ...rebateFields(refundId), amount: money(minor, 'EUR') }, SECRET.merchantPassword, iv);
      return post({ merchantId: SECRET.merchantId, encrypted: request.encrypted, integrityCheck: request.integrityCheck });
    };
    expect((await send(100)).answer.operations.at(-1)?.status).toBe('SUCCESS');
    expect((await send(200)).answer.operations.at(-1)).toMatchObject({
      status: 'ERROR',
      message: 'merchantTransactionId was already used for a different request',
    });
    expect(paid(refundId)).toBe(1);
  });
});
