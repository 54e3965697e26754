import { addonPaymentsSecretSchema, AddonPaymentsResponseError, parseStatusNotification } from '../../../lambdas/providers/addon-payments/schemas';
import { DOCUMENTED } from './fixtures/answers';

describe('EPG status notifications and secret', () => {
  it('parses a status notification into the refund it names, in XML and JSON', () => {
    expect(parseStatusNotification(DOCUMENTED)).toMatchObject({ merchantTransactionId: '74839704', status: 'SUCCESS', transactionId: '7831836' });
    const json = JSON.stringify({ response: { operationsArray: [{ status: 'ERROR', merchantTransactionId: 'rf-9', transactionId: '12' }] } });
    expect(parseStatusNotification(json)).toMatchObject({ merchantTransactionId: 'rf-9', status: 'ERROR', transactionId: '12' });
  });

  it.each([
    ['an empty body', ''],
    ['a DOCTYPE', '<!DOCTYPE response [<!ENTITY x "y">]><response/>'],
    ['another root element', '<order><status>SUCCESS</status></order>'],
    ['an operation without status', '<response><operations><operation><merchantTransactionId>r</merchantTransactionId></operation></operations></response>'],
    ['no operation', '<response><status>SUCCESS</status></response>'],
    ['no merchantTransactionId', '<response><operations><operation><status>SUCCESS</status></operation></operations></response>'],
    ['broken JSON', '{"response":'],
    ['a JSON array', '[1]'],
  ])('refuses a notification with %s', (_, body) => {
    expect(() => parseStatusNotification(body)).toThrow(AddonPaymentsResponseError);
  });

  it('validates the addonPayments secret without echoing it', () => {
    expect(addonPaymentsSecretSchema.safeParse({ merchantId: '123456', merchantPassword: 'k'.repeat(32) }).success).toBe(true);
    const bad = addonPaymentsSecretSchema.safeParse({ merchantId: 'abc', merchantPassword: 'é'.repeat(16) + 'k'.repeat(16) });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues.map((issue) => issue.message))).not.toContain('é');
    expect(bad.error?.issues.map((issue) => issue.path[0])).toEqual(['merchantId', 'merchantPassword']);
  });
});
