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
    ['no country code', { AP21_API_URL: required.AP21_API_URL }, 'AP21_COUNTRY_CODE'],
    ['no base URL', { AP21_COUNTRY_CODE: 'AU' }, 'AP21_API_URL'],
    ['a non-HTTP base URL', { ...required, AP21_API_URL: 'ftp://retailapi.example.com/' }, 'AP21_API_URL'],
    ['an unknown time zone', { ...required, AP21_TIME_ZONE: 'Mars/Olympus' }, 'AP21_TIME_ZONE: not an IANA time zone'],
    ['an unknown currency', { ...required, AP21_CURRENCY: 'XYZ' }, 'AP21_CURRENCY: not an ISO 4217 currency code'],
    ['a version that is not n.n', { ...required, AP21_API_VERSION: 'latest' }, 'AP21_API_VERSION'],
    [
      'a returns path without {orderId}',
      { ...required, AP21_RETURNS_LIST_PATH: 'Persons/{personId}/Returns' },
      'AP21_RETURNS_LIST_PATH: must contain {personId} and {orderId}',
    ],
    ['zero calls per second', { ...required, AP21_MAX_CALLS_PER_SECOND: '0' }, 'AP21_MAX_CALLS_PER_SECOND'],
  ])('refuses %s, naming the variable', (_, env, named) => {
    expect(() => loadAp21Config(env)).toThrow(ConfigurationError);
    expect(() => loadAp21Config(env)).toThrow(`bad Ap21 environment: ${named}`);
  });
});
