import { startOpttyClientWorld, type OpttyClientWorld } from '../../support/harness/optty-client';

let world: OpttyClientWorld;
beforeAll(async () => {
  world = await startOpttyClientWorld();
});
afterAll(() => world.close());
afterEach(() => world.reset());

/**
 * None of these is about a slow Optty: the harness's 700 ms call timeout (its hang tests need it short)
 * would turn a loaded machine's first, cold token request into a failure of every caller waiting on it.
 */
const connector: OpttyClientWorld['connector'] = (env = {}, credentials) => world.connector({ OPTTY_TIMEOUT_MS: '5000', ...env }, credentials);

describe('Optty access token', () => {
  it('is fetched once for many concurrent refunds (single flight) and then reused', async () => {
    const { connector: client } = connector();
    const start = world.optty.tokenRequests();

    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => client.submit(world.reversal(`OPT-${1020 + i}`))));
    await client.submit(world.reversal('OPT-1040'));

    expect(outcomes.map((outcome) => outcome.kind)).toEqual(Array(20).fill('succeeded'));
    expect(world.tokensSince(start)).toBe(1);
  });

  it('is refreshed OPTTY_TOKEN_REFRESH_MARGIN_SECONDS before it expires', async () => {
    world.optty.setTokenTtl(3_600);
    const { connector: client } = connector({ OPTTY_TOKEN_REFRESH_MARGIN_SECONDS: '60' });
    const start = world.optty.tokenRequests();

    await client.submit(world.reversal('OPT-1041'));
    world.clock.ms += 3_539_000;
    await client.submit(world.reversal('OPT-1042'));
    const beforeMargin = world.tokensSince(start);
    world.clock.ms += 2_000;
    await client.submit(world.reversal('OPT-1043'));

    expect([beforeMargin, world.tokensSince(start)]).toEqual([1, 2]);
    expect([world.payouts()['rf-OPT-1042'], world.payouts()['rf-OPT-1043']]).toEqual([1, 1]);
  });

  it('serves its waiting callers even when it expires within the margin, and is not cached', async () => {
    world.optty.setTokenTtl(30);
    const { connector: client } = connector({ OPTTY_TOKEN_REFRESH_MARGIN_SECONDS: '60' });
    const start = world.optty.tokenRequests();

    const outcomes = await Promise.all([client.submit(world.reversal('OPT-1044')), client.submit(world.reversal('OPT-1045'))]);
    await client.submit(world.reversal('OPT-1046'));

    expect(outcomes.map((outcome) => outcome.kind)).toEqual(['succeeded', 'succeeded']);
    expect(world.tokensSince(start)).toBe(2);
  });

  it('after a 401 is dropped, refreshed once and the refund retried once', async () => {
    const { connector: client } = connector();
    await client.submit(world.reversal('OPT-1047'));
    world.optty.revokeTokens();
    const start = world.optty.tokenRequests();

    expect(await client.submit(world.reversal('OPT-1048'))).toMatchObject({ kind: 'succeeded' });
    expect(world.tokensSince(start)).toBe(1);
    expect(world.payouts()['rf-OPT-1048']).toBe(1);
  });

  it('makes a 401 after the refresh a permanent failure (bad credentials)', async () => {
    const { connector: client } = connector();
    world.optty.setRejectAllTokens(true);
    const start = world.optty.tokenRequests();

    expect(await client.submit(world.reversal('OPT-1049'))).toEqual({
      kind: 'failed',
      retryable: false,
      detail: 'Optty refund rf-OPT-1049: Optty refused a freshly issued token (HTTP 401); check the client credentials',
    });
    expect(world.tokensSince(start)).toBe(2);
    expect(world.payouts()['rf-OPT-1049']).toBeUndefined();
  });

  it('fails permanently, without calling the API, when Optty refuses our client credentials', async () => {
    const { connector: client } = connector({}, { ...world.secret, clientSecret: 'wrong-secret' });
    const before = world.optty.refundBodies().length;

    const outcome = await client.submit(world.reversal('OPT-1050'));

    expect(outcome).toEqual({ kind: 'failed', retryable: false, detail: 'Optty refused our client credentials (HTTP 401)' });
    expect(JSON.stringify(outcome)).not.toContain('wrong-secret');
    expect(world.optty.refundBodies().length).toBe(before);
  });

  it('picks up a rotated client secret by re-reading the secret once', async () => {
    const { connector: client, source } = connector({}, { ...world.secret, clientSecret: 'retired-secret' });
    await source.get('optty', { forceFetch: false });
    source.set('optty', world.secret);

    expect(await client.submit(world.reversal('OPT-1051'))).toMatchObject({ kind: 'succeeded' });
    expect(source.reads.filter((read) => read.forceFetch)).toHaveLength(1);
  });

  it('retries later when the token endpoint fails (5xx)', async () => {
    world.host.setFaults('optty-auth', { failureRate: 1 });
    expect(await connector().connector.submit(world.reversal('OPT-1052'))).toEqual({
      kind: 'failed',
      retryable: true,
      detail: 'Optty token endpoint answered HTTP 503',
    });
    expect(world.payouts()['rf-OPT-1052']).toBeUndefined();
  });
});
