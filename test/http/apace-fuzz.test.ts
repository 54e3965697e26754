import fc from 'fast-check';
import { signCallbackToken, type CallbackPurpose } from '../../lambdas/providers/apace/callback-token';
import type { ApaceSecret } from '../../lambdas/providers/apace/schemas';
import { APACE_SIGNATURE_HEADER, signApaceBody } from '../../lambdas/providers/apace/signature';
import { DAY_MS, apaceUrls, apaceWebhook, offeredRefund, tableSnapshot } from '../support/fixtures';
import { requestFrom, type RawAnswer } from '../support/source-address';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * Hostile input for Apace's two callback routes, generated. The target is a refund offered through
 * Apace — the state in which a forged "pending" webhook would pay it and a forged verification
 * would record a claim — and every request is broken in at least one way the route must notice:
 * the URL token (forged, expired, another key, another purpose, another refund, repeated), the
 * path ids, the method, the media type, the encoding, the size, the JSON's shape, the signature.
 * Every answer must be a 4xx in our error shape, and the table must be exactly what it was.
 */
let stack: TestStack;
let apace: ApaceSecret;
let before: unknown[];

const TARGET = { orderId: 'ap-fuzz', refundId: 'ap-fuzz-r1' };
/** Another refund of ours, offered too: its genuine tokens must not open the target's URLs. */
const OTHER = { orderId: 'ap-fuzz-other', refundId: 'ap-fuzz-other-r1' };
const BATCH = 20;
const RUNS = 50;

beforeAll(async () => {
  stack = await startTestStack();
  apace = stack.secrets.apace as ApaceSecret;
  await offeredRefund(stack.runtime.store, TARGET.orderId, TARGET.refundId);
  await offeredRefund(stack.runtime.store, OTHER.orderId, OTHER.refundId);
  before = await tableSnapshot(stack.dynamo.endpoint);
});
afterAll(() => stack.close());

interface Hostile {
  readonly what: string;
  readonly path: string;
  readonly method: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

interface Ids {
  readonly orderId: string;
  readonly refundId: string;
}

const LEAF: Record<CallbackPurpose, string> = { verify: 'verification', notify: 'notification' };
const METHOD: Record<CallbackPurpose, string> = { verify: 'GET', notify: 'POST' };
const OTHER_PURPOSE: Record<CallbackPurpose, CallbackPurpose> = { verify: 'notify', notify: 'verify' };
const INVALID_UTF8 = Buffer.from([0x7b, 0x22, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x5f, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0xff, 0x22, 0x7d]);
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const live = () => Date.now() + 10 * DAY_MS;
const token = (purpose: CallbackPurpose, ids: Ids = TARGET, expiresAtMs = live(), secret: ApaceSecret = apace) =>
  signCallbackToken(secret, purpose, ids.orderId, ids.refundId, expiresAtMs);
/** The callback path; `ids` are put in as given, so a test can send ids that are already (mal)encoded. */
const pathOf = (purpose: CallbackPurpose, ids: Ids, query: string) => `/apace/orders/${ids.orderId}/refunds/${ids.refundId}/${LEAF[purpose]}${query}`;
const withToken = (value: string) => `?auth_token=${encodeURIComponent(value)}`;

/** The URL tokens the route must refuse, for a request that is otherwise exactly right. */
function hostileTokens(purpose: CallbackPurpose): fc.Arbitrary<{ what: string; query: string }> {
  const keyOf = (secret: ApaceSecret) => secret.callbackKeys[secret.callbackKeyId]!;
  return fc.oneof(
    fc.constant({ what: 'no token', query: '' }),
    fc.constantFrom('?auth_token=', '?auth_token').map((query) => ({ what: `empty token ${query}`, query })),
    fc
      .constantFrom('AUTH_TOKEN', 'auth_token[]', 'token', 'authToken', 'auth-token', 'auth_token%20')
      .map((name) => ({ what: `genuine token as ${name}`, query: `?${name}=${encodeURIComponent(token(purpose))}` })),
    fc.string({ maxLength: 300 }).map((text) => ({ what: `random token ${JSON.stringify(text.slice(0, 20))}`, query: withToken(text) })),
    fc
      .record({
        keyId: fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/),
        expiry: fc.integer({ min: 1_000_000_000, max: 9_999_999_999 }),
        mac: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      })
      .map(({ keyId, expiry, mac }) => ({
        what: `forged ${keyId}.${expiry}`,
        query: withToken(`${keyId}.${expiry}.${Buffer.from(mac).toString('base64url')}`),
      })),
    // The real key under a key id we do not have, including ids that name an object's own properties.
    fc.constantFrom('k2', 'K1', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf').map((keyId) => ({
      what: `key id ${keyId}`,
      query: withToken(token(purpose, TARGET, live(), { ...apace, callbackKeys: { [keyId]: keyOf(apace) }, callbackKeyId: keyId })),
    })),
    fc.uint8Array({ minLength: 32, maxLength: 64 }).map((key) => ({
      what: 'another key under our key id',
      query: withToken(token(purpose, TARGET, live(), { ...apace, callbackKeys: { [apace.callbackKeyId]: Buffer.from(key).toString('base64url') } })),
    })),
    fc
      .integer({ min: 0, max: 400 * 24 * 3600 })
      .map((secondsAgo) => ({ what: `expired ${secondsAgo} s ago`, query: withToken(token(purpose, TARGET, Date.now() - secondsAgo * 1000)) })),
    fc.constant({ what: 'the other purpose’s token', query: withToken(token(OTHER_PURPOSE[purpose])) }),
    fc
      .constantFrom<Ids>(
        OTHER,
        { orderId: TARGET.orderId, refundId: OTHER.refundId },
        { orderId: OTHER.orderId, refundId: TARGET.refundId },
        { orderId: TARGET.refundId, refundId: TARGET.orderId },
      )
      .map((ids) => ({ what: `token of ${ids.orderId}/${ids.refundId}`, query: withToken(token(purpose, ids)) })),
    // One character of the genuine MAC changed. Its last character carries two unused bits, so only
    // the first 42 of its 43 characters are changed: a change to any of those changes the MAC's bytes.
    fc.record({ at: fc.nat({ max: 41 }), by: fc.integer({ min: 1, max: 63 }) }).map(({ at, by }) => {
      const genuine = token(purpose);
      const position = genuine.lastIndexOf('.') + 1 + at;
      const changed = BASE64URL[(BASE64URL.indexOf(genuine[position]!) + by) % BASE64URL.length]!;
      return { what: `MAC changed at ${at}`, query: withToken(`${genuine.slice(0, position)}${changed}${genuine.slice(position + 1)}`) };
    }),
    // A genuine token's life extended by rewriting its expiry.
    fc.integer({ min: 1, max: 10 * 365 * 24 * 3600 }).map((seconds) => {
      const [keyId, expiry, mac] = token(purpose).split('.');
      return { what: `expiry pushed ${seconds} s later`, query: withToken(`${keyId}.${Number(expiry) + seconds}.${mac}`) };
    }),
    fc
      .constantFrom(
        (t: string) => `${t}=`,
        (t: string) => ` ${t}`,
        (t: string) => `${t}\n`,
        (t: string) => `${t}.`,
        (t: string) => `${t}${t}`,
        (t: string) => t.slice(0, -1),
      )
      .map((mangle) => ({ what: 'a mangled token', query: withToken(mangle(token(purpose))) })),
    fc
      .constantFrom<(t: string) => string>(
        (t) => `?auth_token=${t}&auth_token=${t}`,
        (t) => `?auth_token=${t}&auth_token=`,
        (t) => `?auth_token=&auth_token=${t}`,
        (t) => `?auth_token=${t}&auth_token=${token(OTHER_PURPOSE[purpose])}`,
      )
      .map((repeat) => ({ what: 'auth_token repeated', query: repeat(encodeURIComponent(token(purpose))) })),
  );
}

/** Path ids that are not ours: bad characters, encodings, lengths; an empty segment. */
const BAD_IDS = [
  '.',
  '-lead',
  '_lead',
  ':x',
  'has%20space',
  '%C3%A9',
  'x'.repeat(129),
  '%00',
  'a%2Fb',
  '..',
  '%2E%2E',
  'a%0Ab',
  'a%22b',
  "a'b",
  '*',
  'a;b',
  'a,b',
  '',
];
/** Path ids that are not even valid percent-encoding: the local server fails on them (see the last test). */
const UNDECODABLE_IDS = ['%', '%ZZ', '%E0%A4%A'];

function malformedPaths(purpose: CallbackPurpose): fc.Arbitrary<Hostile> {
  return fc.record({ bad: fc.constantFrom(...BAD_IDS), inOrder: fc.boolean() }).map(({ bad, inOrder }) => {
    const ids = inOrder ? { ...TARGET, orderId: bad } : { ...TARGET, refundId: bad };
    return {
      what: `path id ${JSON.stringify(bad)}`,
      path: pathOf(purpose, ids, withToken(token(purpose, ids))),
      method: METHOD[purpose],
      ...(purpose === 'notify' && signedJson(apaceWebhook(TARGET.orderId, 'pending'))),
    };
  });
}

/** Everything about the request right except the method. */
function wrongMethods(purpose: CallbackPurpose): fc.Arbitrary<Hostile> {
  return fc
    .constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE')
    .filter((method) => method !== METHOD[purpose])
    .map((method) => ({
      what: `${method} on ${LEAF[purpose]}`,
      path: pathOf(purpose, TARGET, withToken(token(purpose))),
      method,
      ...(method !== 'GET' && signedJson(apaceWebhook(TARGET.orderId, 'pending'))),
    }));
}

const signedJson = (body: string | Buffer, type = 'application/json') => ({
  headers: { 'content-type': type, [APACE_SIGNATURE_HEADER]: signApaceBody(apace.apiSecret, body) },
  body,
});

function verificationRequests(): fc.Arbitrary<Hostile> {
  const genuine = () => pathOf('verify', TARGET, withToken(token('verify')));
  return fc.oneof(
    { weight: 6, arbitrary: hostileTokens('verify').map(({ what, query }) => ({ what, path: pathOf('verify', TARGET, query), method: 'GET' })) },
    { weight: 2, arbitrary: malformedPaths('verify') },
    { weight: 1, arbitrary: wrongMethods('verify') },
    // A genuine token for a refund we never made (the key leaked, or a URL of another stage).
    {
      weight: 1,
      arbitrary: fc
        .constantFrom<Ids>(
          { orderId: 'ghost-order', refundId: 'ghost-r1' },
          { orderId: TARGET.orderId, refundId: 'ap-fuzz-r9' },
          { orderId: OTHER.orderId, refundId: TARGET.refundId },
        )
        .map((ids) => ({
          what: `genuine token for unknown ${ids.orderId}/${ids.refundId}`,
          path: pathOf('verify', ids, withToken(token('verify', ids))),
          method: 'GET',
        })),
    },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ minLength: 1, maxLength: 256 })
        .map((bytes) => ({ what: 'a body on GET', path: genuine(), method: 'GET', headers: { 'content-type': 'application/json' }, body: Buffer.from(bytes) })),
    },
  );
}

function notificationRequests(): fc.Arbitrary<Hostile> {
  const genuinePath = () => pathOf('notify', TARGET, withToken(token('notify')));
  const webhook = () => JSON.parse(apaceWebhook(TARGET.orderId, 'pending')) as Record<string, unknown>;
  const post = (what: string, parts: { headers: Record<string, string>; body: string | Buffer }, path = genuinePath()) => ({
    what,
    path,
    method: 'POST',
    ...parts,
  });
  /** For each field the notification is judged by, values its schema must refuse. */
  const WRONG: Record<string, readonly unknown[]> = {
    refund_id: [null, true, 1.5, -0.5, [], {}, '', 'x'.repeat(129)],
    order_id: [null, false, 42, [], {}, '', 'x'.repeat(129)],
    refund_success: [null, 'false', 'true', 0, 1, [], {}],
  };

  /** Correctly signed JSON that is not a notification Apace would send about this order. */
  const wrongShape: fc.Arbitrary<{ what: string; body: string }> = fc.oneof(
    fc.record({ field: fc.constantFrom(...Object.keys(WRONG)), drop: fc.boolean(), pick: fc.nat() }).map(({ field, drop, pick }) => {
      const wrong = WRONG[field]!;
      const value = wrong[pick % wrong.length];
      const body = webhook();
      if (drop) delete body[field];
      else body[field] = value;
      return { what: drop ? `no ${field}` : `${field}=${JSON.stringify(value)?.slice(0, 20)}`, body: JSON.stringify(body) };
    }),
    fc
      .constantFrom('approved', 'PENDING', 'processing', '', 'canceled', 'refundByVendor')
      .map((status) => ({ what: `refund_status ${status}`, body: JSON.stringify({ ...webhook(), refund_status: status }) })),
    fc
      .constantFrom<[string, unknown]>(
        ['date_created', 'x'.repeat(65)],
        ['datetime_refund_sent', 42],
        ['item_ids', 'one'],
        ['item_ids', Array.from({ length: 1001 }, (_, i) => String(i))],
        ['item_ids', [{}]],
        ['item_ids', ['x'.repeat(129)]],
        ['refund_id', 1.5],
        ['refund_id', ''],
        ['order_id', ''],
      )
      .map(([field, value]) => ({ what: `${field} out of range`, body: JSON.stringify({ ...webhook(), [field]: value }) })),
    fc.constantFrom('[]', '42', '"pending"', 'null', 'true', '{}', '[{"order_id":"ap-fuzz"}]').map((body) => ({ what: `JSON ${body}`, body })),
    fc
      .constantFrom('someone-else', 'AP-FUZZ', 'ap-fuzz ', OTHER.orderId)
      .map((orderId) => ({ what: `order_id ${orderId}`, body: JSON.stringify({ ...webhook(), order_id: orderId }) })),
    fc.constant({ what: '__proto__ in place of the fields', body: `{"__proto__":${JSON.stringify(webhook())}}` }),
    fc.integer({ min: 100, max: 5_000 }).map((depth) => ({ what: `nested ${depth} deep`, body: `${'['.repeat(depth)}${']'.repeat(depth)}` })),
    fc.json({ maxDepth: 3 }).map((body) => ({ what: `random JSON ${body.slice(0, 30)}`, body })),
    fc.nat({ max: 60 }).map((cut) => ({ what: 'truncated JSON', body: apaceWebhook(TARGET.orderId, 'pending').slice(0, cut) })),
  );

  const valid = () => apaceWebhook(TARGET.orderId, 'pending');
  const badSignatures = fc.oneof(
    fc.constant({ what: 'no signature', headers: { 'content-type': 'application/json' } }),
    fc.constantFrom('', 'zz', '0'.repeat(63), '0'.repeat(65), 'g'.repeat(64), `sha256=${'0'.repeat(64)}`, ' '.repeat(64)).map((signature) => ({
      what: `signature ${JSON.stringify(signature.slice(0, 12))}`,
      headers: { 'content-type': 'application/json', [APACE_SIGNATURE_HEADER]: signature },
    })),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => ({
      what: 'random signature',
      headers: { 'content-type': 'application/json', [APACE_SIGNATURE_HEADER]: Buffer.from(bytes).toString('hex') },
    })),
    fc.string({ minLength: 1, maxLength: 64 }).map((key) => ({
      what: 'signed with another secret',
      headers: { 'content-type': 'application/json', [APACE_SIGNATURE_HEADER]: signApaceBody(`${apace.apiSecret}${key}`, valid()) },
    })),
    fc
      .constantFrom<[string, string]>(
        ['the processed body', apaceWebhook(TARGET.orderId, 'processed')],
        ['the body with a trailing newline', `${apaceWebhook(TARGET.orderId, 'pending')}\n`],
        ['the other order’s body', apaceWebhook(OTHER.orderId, 'pending')],
        ['an empty body', ''],
      )
      .map(([what, signedBody]) => ({
        what: `signature of ${what}`,
        headers: { 'content-type': 'application/json', [APACE_SIGNATURE_HEADER]: signApaceBody(apace.apiSecret, signedBody) },
      })),
    fc.constant({
      what: 'two signatures',
      headers: {
        'content-type': 'application/json',
        [APACE_SIGNATURE_HEADER]: `${signApaceBody(apace.apiSecret, apaceWebhook(TARGET.orderId, 'pending'))}, ${signApaceBody(apace.apiSecret, apaceWebhook(TARGET.orderId, 'pending'))}`,
      },
    }),
  );

  return fc.oneof(
    { weight: 4, arbitrary: hostileTokens('notify').map(({ what, query }) => post(what, signedJson(valid()), pathOf('notify', TARGET, query))) },
    { weight: 4, arbitrary: wrongShape.map(({ what, body }) => post(`signed ${what}`, signedJson(body))) },
    { weight: 3, arbitrary: badSignatures.map(({ what, headers }) => post(what, { headers, body: valid() })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/jsonp',
          'application/json-patch+json',
          'text/json',
          '',
        )
        .map((type) => post(`type ${type}`, signedJson(valid(), type))),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((bytes) => post('signed random bytes', signedJson(Buffer.from(bytes)))) },
    { weight: 1, arbitrary: fc.constant(post('signed invalid UTF-8', signedJson(INVALID_UTF8))) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 33 * 1024, max: 200 * 1024 })
        .map((size) => post(`signed ${size} bytes`, signedJson(JSON.stringify({ ...webhook(), padding: 'x'.repeat(size) })))),
    },
    { weight: 1, arbitrary: malformedPaths('notify') },
    { weight: 1, arbitrary: wrongMethods('notify') },
    // Token, signature and body all genuine — for a refund we never made.
    {
      weight: 1,
      arbitrary: fc
        .constantFrom<Ids>(
          { orderId: 'ghost-order', refundId: 'ghost-r1' },
          { orderId: TARGET.orderId, refundId: 'ap-fuzz-r9' },
          { orderId: OTHER.orderId, refundId: TARGET.refundId },
        )
        .map((ids) =>
          post(
            `genuine notification for unknown ${ids.orderId}/${ids.refundId}`,
            signedJson(apaceWebhook(ids.orderId, 'pending')),
            pathOf('notify', ids, withToken(token('notify', ids))),
          ),
        ),
    },
  );
}

/** Sent with a Content-Length, so that a body on GET or DELETE is framed rather than read as the next request. */
function send(request: Hostile): Promise<RawAnswer> {
  const length: Record<string, string> = request.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(request.body)) };
  return requestFrom('127.0.0.1', `${stack.url}${request.path}`, {
    method: request.method,
    headers: { ...request.headers, ...length },
    ...(request.body !== undefined && { body: request.body }),
  });
}

/** A 4xx with our `{error: {code, message}}` body, or what was wrong with the answer. */
function refusal(answer: RawAnswer): string | undefined {
  if (answer.status < 400 || answer.status >= 500) return `status ${answer.status}`;
  try {
    const { error } = JSON.parse(answer.body) as { error?: { code?: unknown; message?: unknown } };
    if (typeof error?.code === 'string' && typeof error.message === 'string') return undefined;
  } catch {
    // Reported below.
  }
  return 'not our error shape';
}

let sent = 0;
const ROUTES: [string, () => fc.Arbitrary<Hostile>][] = [
  ['GET /apace/orders/{orderId}/refunds/{refundId}/verification', verificationRequests],
  ['POST /apace/orders/{orderId}/refunds/{refundId}/notification', notificationRequests],
];

describe('hostile requests to the Apace callback routes', () => {
  it.each(ROUTES)('%s answers every one with a 4xx in our error shape', async (_, requests) => {
    await fc.assert(
      fc.asyncProperty(fc.array(requests(), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const answers = await Promise.all(batch.map(send));
        sent += batch.length;
        const wrong = answers.flatMap((answer, i) => {
          const problem = refusal(answer);
          return problem ? [`${batch[i]!.what} → ${problem}: ${answer.status} ${answer.body.slice(0, 200)}`] : [];
        });
        if (wrong.length > 0) throw new Error(wrong.join('\n'));
      }),
      { numRuns: RUNS, seed: 20_261_122 },
    );
  });

  it('wrote nothing at all', async () => {
    expect(sent).toBe(ROUTES.length * RUNS * BATCH);
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });

  it('still answers the genuine verification the hostile requests were made from, and that one is recorded', async () => {
    const { verificationUrl } = apaceUrls(stack.url, apace, TARGET.orderId, TARGET.refundId);
    const response = await fetch(verificationUrl);
    expect([response.status, await response.json()]).toEqual([200, { allow_refund: true }]);
    expect(await tableSnapshot(stack.dynamo.endpoint)).not.toEqual(before);
  });

  // The local server decodes path parameters before any handler runs, as API Gateway does.
  it('answers a path id that is not valid percent-encoding with a 4xx', async () => {
    const answers = await Promise.all(
      UNDECODABLE_IDS.flatMap((bad) =>
        (['verify', 'notify'] as const).map((purpose) =>
          send({
            what: bad,
            path: pathOf(purpose, { ...TARGET, refundId: bad }, withToken(token(purpose))),
            method: METHOD[purpose],
            ...(purpose === 'notify' && signedJson(apaceWebhook(TARGET.orderId, 'pending'))),
          }),
        ),
      ),
    );
    expect(answers.map(refusal)).toEqual(answers.map(() => undefined));
  });
});
