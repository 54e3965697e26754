import { ConfigurationError } from '../../../lambdas/commons/config';
import { loadAddonPaymentsConfig } from '../../../lambdas/providers/addon-payments/config';

describe('Addon Payments configuration', () => {
  it('needs the API URL and defaults the timeout and payment solution', () => {
    expect(() => loadAddonPaymentsConfig({})).toThrow(ConfigurationError);
    expect(loadAddonPaymentsConfig({ ADDON_PAYMENTS_API_URL: 'https://checkout-stg.addonpayments.com/' })).toEqual({
      apiUrl: 'https://checkout-stg.addonpayments.com',
      timeoutMs: 10_000,
      paymentSolution: 'creditcards',
    });
    expect(
      loadAddonPaymentsConfig({
        ADDON_PAYMENTS_API_URL: 'http://127.0.0.1:9',
        ADDON_PAYMENTS_TIMEOUT_MS: '2500',
        ADDON_PAYMENTS_PAYMENT_SOLUTION: 'caixapucpuce',
      }),
    ).toEqual({ apiUrl: 'http://127.0.0.1:9', timeoutMs: 2500, paymentSolution: 'caixapucpuce' });
    expect(() => loadAddonPaymentsConfig({ ADDON_PAYMENTS_API_URL: 'http://127.0.0.1:9', ADDON_PAYMENTS_TIMEOUT_MS: '0' })).toThrow(
      /ADDON_PAYMENTS_TIMEOUT_MS/,
    );
  });
});
