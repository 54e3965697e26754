import { ConfigurationError } from '../../../lambdas/commons/config';
import { loadAp21Config } from '../../../lambdas/providers/ap21/config';

describe('Ap21 configuration', () => {
  const required = { AP21_API_URL: 'https://retailapi.example.com/RetailAPI/', AP21_COUNTRY_CODE: 'AU' };

  it('defaults to payload version 4.0 (return payments), 2 calls per second (the SDK pace) and UTC wall clock', () => {
    expect(loadAp21Config(required)).toEqual({
      apiUrl: 'https://retailapi.example.com/RetailAPI/',
      countryCode: 'AU',
      apiVersion: '4.0',
      maxCallsPerSecond: 2,
      timeoutMs: 15_000,
      timeZone: 'UTC',
      currency: 'AUD',
      returnsListPath: 'Persons/{personId}/Orders/{orderId}/Returns',
    });
  });

  it.each([
    ['no country code', { AP21_API_URL: required.AP21_API_URL }],
    ['no base URL', { AP21_COUNTRY_CODE: 'AU' }],
    ['a non-HTTP base URL', { ...required, AP21_API_URL: 'ftp://retailapi.example.com/' }],
    ['an unknown time zone', { ...required, AP21_TIME_ZONE: 'Mars/Olympus' }],
    ['an unknown currency', { ...required, AP21_CURRENCY: 'XYZ' }],
    ['a version that is not n.n', { ...required, AP21_API_VERSION: 'latest' }],
    ['a returns path without {orderId}', { ...required, AP21_RETURNS_LIST_PATH: 'Persons/{personId}/Returns' }],
    ['zero calls per second', { ...required, AP21_MAX_CALLS_PER_SECOND: '0' }],
  ])('refuses %s', (_, env) => {
    expect(() => loadAp21Config(env)).toThrow(ConfigurationError);
  });
});
