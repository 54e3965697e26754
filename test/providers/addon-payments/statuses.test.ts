import { parseAddonPaymentsResponse } from '../../../lambdas/providers/addon-payments/schemas';
import { outcomeOfAnswer, outcomeOfHttpResponse } from '../../../lambdas/providers/addon-payments/statuses';
import { DOCUMENTED } from './fixtures/answers';

const operation = (order: number, status: string, transactionId: string) =>
  `<operation sorted-order="${order}"><merchantTransactionId>rf-1</merchantTransactionId><status>${status}</status><transactionId>${transactionId}</transactionId></operation>`;

describe('EPG answers', () => {
  it('reads the documented refund answer', () => {
    expect(parseAddonPaymentsResponse(DOCUMENTED)).toEqual({
      status: 'SUCCESS',
      operations: [
        {
          amount: '30.0',
          currency: 'EUR',
          merchantTransactionId: '74839704',
          message: "Success 'Refund' operation",
          operationType: 'REFUND',
          originalTransactionId: '7831830',
          paymentSolution: 'caixapucpuce',
          remainingAmount: '0.0',
          status: 'SUCCESS',
          transactionId: '7831836',
          respCode: { code: '0000', message: 'Successful', uuid: 'a_b' },
        },
      ],
    });
    expect(outcomeOfAnswer(DOCUMENTED, '74839704')).toEqual({
      kind: 'succeeded',
      providerRef: '7831836',
      detail: "EPG REFUND SUCCESS; Success 'Refund' operation; respCode 0000 Successful; remaining 0.0",
    });
  });

  it('decides on the last operation by sorted-order, not document order', () => {
    const body = `<response operation-size="2"><operations>${operation(2, 'ERROR', '2')}${operation(1, 'SUCCESS', '1')}</operations><status>SUCCESS</status></response>`;
    expect(outcomeOfAnswer(body, 'rf-1')).toMatchObject({ kind: 'failed', retryable: false, providerRef: '2' });
    const reversed = `<response><operations>${operation(1, 'ERROR', '1')}${operation(2, 'PENDING', '2')}</operations></response>`;
    expect(outcomeOfAnswer(reversed, 'rf-1')).toMatchObject({ kind: 'pending', providerRef: '2' });
  });

  it('accepts the JSON form the SDK parser accepts, with or without the response key', () => {
    const inner = {
      status: 'SUCCESS',
      operationsArray: [
        { status: 'PENDING', merchantTransactionId: 'rf-1', transactionId: 99, amount: 30 },
        { status: 'success', merchantTransactionId: 'rf-1', transactionId: 100 },
      ],
    };
    for (const body of [JSON.stringify({ response: inner }), JSON.stringify(inner)]) {
      expect(outcomeOfAnswer(body, 'rf-1')).toMatchObject({ kind: 'succeeded', providerRef: '100' });
    }
  });

  it.each([
    ['SUCCESS', { kind: 'succeeded' }],
    ['PENDING', { kind: 'pending' }],
    ['REDIRECTED', { kind: 'pending' }],
    ['ERROR', { kind: 'failed', retryable: false }],
    ['FAIL', { kind: 'failed', retryable: false }],
    ['SUCCESS3DS', { kind: 'unknown' }],
  ])('maps a last operation %s to %j', (status, expected) => {
    expect(outcomeOfAnswer(`<response><operations>${operation(1, status, '5')}</operations></response>`, 'rf-1')).toMatchObject(expected);
  });

  it('does not trust an answer about another merchantTransactionId', () => {
    expect(outcomeOfAnswer(DOCUMENTED, 'rf-other')).toMatchObject({ kind: 'unknown', detail: expect.stringContaining('74839704') });
  });

  it('treats an ERROR without any operation as a refusal in which nothing was paid', () => {
    expect(outcomeOfAnswer('<response><message>Invalid request</message><status>ERROR</status></response>', 'rf-1')).toEqual({
      kind: 'failed',
      retryable: false,
      detail: 'EPG refused the rebate: Invalid request',
    });
  });

  it.each([
    [200, 'not xml', { kind: 'failed', retryable: true }],
    [200, '<html><body>gateway</body></html>', { kind: 'failed', retryable: true }],
    [307, DOCUMENTED, { kind: 'succeeded' }],
    [500, '', { kind: 'failed', retryable: true }],
    [503, 'busy', { kind: 'failed', retryable: true }],
    [408, '', { kind: 'failed', retryable: true }],
    [429, '', { kind: 'failed', retryable: true }],
    [400, '<response><status>ERROR</status></response>', { kind: 'failed', retryable: false }],
    [403, 'forbidden', { kind: 'failed', retryable: false }],
    [302, '', { kind: 'failed', retryable: false }],
  ])('classifies HTTP %i %j', (status, body, expected) => {
    expect(outcomeOfHttpResponse(status, body, '74839704')).toMatchObject(expected);
  });

  it('masks card numbers echoed in an error body', () => {
    const outcome = outcomeOfHttpResponse(400, 'bad card 4111 1111 1111 1111', 'rf-1');
    expect(outcome).toMatchObject({ detail: expect.stringContaining('****1111') });
    expect(JSON.stringify(outcome)).not.toContain('4111 1111');
  });
});
