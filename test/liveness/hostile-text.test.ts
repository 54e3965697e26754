import * as z from 'zod/mini';
import { MAX_MESSAGE_CHARS } from '../../lambdas/commons/bounded';
import { BadRequestError } from '../../lambdas/commons/http-errors';
import { errorResponse } from '../../lambdas/commons/http';
import { logger } from '../../lambdas/commons/logger';
import { describeError, MAX_LOG_TEXT, maskText, redactForLog } from '../../lambdas/commons/redact';
import { describeIssues, parseOrReject } from '../../lambdas/commons/validation';
import { parseXml } from '../../lambdas/commons/xml';
import { parseStatusNotification } from '../../lambdas/providers/addon-payments/schemas';
import { readEach, readOrder } from '../../lambdas/providers/ap21/schemas';
import { parseAp21Push } from '../../lambdas/services/ap21-push';
import { startAp21ForStack, type Ap21ForStack } from '../support/ap21-orders';
import { tableSnapshot } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * A megabyte of hostile text through every log and error path (docs/design.md §2.5): the log masks,
 * error answers, zod issue lists, the XML reader, the Ap21 document reader, and every inbound route
 * with as much as it accepts. Each must cost linear time (the whole file runs in the normal test
 * timeout) and echo nothing unbounded: answers stay within MAX_MESSAGE_CHARS, log strings within
 * MAX_LOG_TEXT.
 */
const MB = 1024 * 1024;

/** Texts that defeat naive patterns: e-mail-ish runs (quadratic backtracking), digit runs, long names. */
const HOSTILE: Record<string, string> = {
  'a local part without an @': 'a'.repeat(MB),
  'an @ every other character': 'a@'.repeat(MB / 2),
  'a domain of dots': `a@${'a.'.repeat(MB / 2)}`,
  'addresses back to back': 'j.doe+x@example.com'.repeat(MB / 19),
  'digits and spaces': '4 '.repeat(MB / 2),
  'card numbers back to back': '4111111111111111 '.repeat(MB / 17),
};

describe('a megabyte of hostile text through the log and error paths', () => {
  it.each(Object.entries(HOSTILE))('masks %s in linear time and logs at most MAX_LOG_TEXT of it', (_, text) => {
    // Masking may lengthen text (`x@` → `x***@`), never by more than it had.
    expect(maskText(text).length).toBeLessThan(2 * text.length);
    expect((redactForLog('detail', text) as string).length).toBeLessThanOrEqual(MAX_LOG_TEXT + 32);
    expect(describeError(new Error(text)).message.length).toBeLessThanOrEqual(MAX_LOG_TEXT + 32);
    expect(redactForLog(text, 'value')).toBe('value');
  });

  it('writes log lines of bounded length through the real logger', () => {
    const lines: string[] = [];
    const capture = (chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    };
    const spies = [jest.spyOn(process.stdout, 'write').mockImplementation(capture), jest.spyOn(process.stderr, 'write').mockImplementation(capture)];
    logger.setLogLevel('INFO');
    try {
      for (const text of Object.values(HOSTILE)) {
        logger.warn(text, { detail: text });
        logger.error('failed', { error: new Error(text) });
      }
    } finally {
      logger.setLogLevel('SILENT');
      for (const spy of spies) spy.mockRestore();
    }
    expect(lines.length).toBeGreaterThanOrEqual(2 * Object.keys(HOSTILE).length);
    for (const line of lines) expect(line.length).toBeLessThan(4 * MAX_LOG_TEXT);
  });

  it('answers errors and zod issues about it in at most MAX_MESSAGE_CHARS', () => {
    const text = HOSTILE['a local part without an @']!;
    expect(JSON.stringify(errorResponse(new BadRequestError(text)).body).length).toBeLessThan(MAX_MESSAGE_CHARS + 100);
    const issues = Array.from({ length: 50 }, (_, i) => ({ code: 'custom' as const, path: [text, i, text], message: text, input: text }));
    expect(describeIssues(issues).length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS + 32);
    // zod names an unknown key in full in its own message; the 422 does not.
    expect(() => parseOrReject(z.strictObject({ a: z.string() }), { a: 'x', [text]: 1 }, 'request')).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/^request is invalid: Unrecognized key: "a{50}/) as string }) as Error,
    );
    try {
      parseOrReject(z.strictObject({ a: z.string() }), { a: 'x', [text]: 1 }, 'request');
    } catch (error) {
      expect((error as Error).message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS + 32);
    }
  });

  it('refuses XML with a megabyte-long name, quoting a few characters of it', () => {
    const name = `N${'a'.repeat(MB)}`;
    for (const source of [`<${name}>x</${name}x>`, `<a ${name}="1" ${name}="2"/>`, `<a></${name}>`]) {
      expect(() => parseXml(source)).toThrow(expect.objectContaining({ message: expect.stringMatching(/^.{1,200}$/) as string }) as Error);
    }
  });

  it('reads an Ap21 order whose product name is a megabyte (cut), and sets aside one whose Stan is (bounded reason and raw)', () => {
    const order = (productName: string, stan: string) =>
      parseXml(
        `<Order><Id>1</Id><OrderNumber>W1</OrderNumber><PersonId>2</PersonId><OrderDetails><OrderDetail><Id>3</Id><SkuId>4</SkuId><ProductName>${productName}</ProductName><Quantity>1</Quantity><Value>10</Value></OrderDetail></OrderDetails><Payments><PaymentDetail><Stan>${stan}</Stan><Amount>10</Amount></PaymentDetail></Payments></Order>`,
      );
    const long = 'x'.repeat(MB);
    const read = readEach(order(long, '1'), (element) => readOrder(element, { currency: 'AUD', timeZone: 'UTC' }));
    expect(read.kind === 'read' && read.value.lines[0]!.productName?.length).toBe(256);
    const refused = readEach(order('Shirt', long), (element) => readOrder(element, { currency: 'AUD', timeZone: 'UTC' }));
    if (refused.kind !== 'unreadable') throw new Error('a megabyte Stan must be refused: refunds are matched on it');
    expect(refused.unreadable.reason.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS + 32);
    expect(refused.unreadable.raw.length).toBeLessThan(16_384);
  });

  it('CONTROL: the e-mail pattern redact.ts used before costs more on 32 KB than the mask now costs on a megabyte', () => {
    const quadratic = /([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})/g;
    const time = (work: () => unknown) => {
      const started = performance.now();
      work();
      return performance.now() - started;
    };
    const now = time(() => maskText(HOSTILE['a local part without an @']!));
    const before = time(() => 'a'.repeat(32 * 1024).replace(quadratic, '$1***@$2'));
    expect(before).toBeGreaterThan(now);
  });

  it('CONTROL: the routes’ own messages quote the hostile input in full; only the central bound keeps it out of the answer', () => {
    const name = `N${'a'.repeat(30 * 1024)}`;
    const pushed = (() => {
      try {
        parseAp21Push(`<${name}>1</${name}>`);
      } catch (error) {
        return error as Error;
      }
      throw new Error('expected a refusal');
    })();
    expect(pushed.message.length).toBeGreaterThan(30 * 1024);
    expect(JSON.stringify(errorResponse(pushed).body).length).toBeLessThan(MAX_MESSAGE_CHARS + 100);
    expect(() => parseStatusNotification(`<${name}/>`)).toThrow(expect.objectContaining({ message: expect.stringContaining(name) }) as Error);
  });
});

describe('every inbound route, sent the most hostile text it accepts', () => {
  let stack: TestStack;
  let ap21: Ap21ForStack;
  let before: unknown[];

  beforeAll(async () => {
    stack = await startTestStack({ REFUNDID_ALLOWED_IPS: '127.0.0.1', PAYPRO_IPN_SOURCE_IPS: '127.0.0.1', AP21_PUSH_ALLOWED_IPS: '127.0.0.1,::1' });
    ap21 = await startAp21ForStack(stack);
    Object.assign(process.env, ap21.env);
    before = await tableSnapshot(stack.dynamo.endpoint);
  });
  afterAll(async () => {
    await ap21.host.close();
    await stack.close();
  });

  /** A text as long as a body of `limit` bytes allows, made of e-mail-ish characters (the mask's worst case). */
  const filler = (limit: number) => `N${'a.b+c'.repeat(Math.floor((limit - 200) / 10))}`;
  /** An XML name that long: what the routes' refusals quote. */
  const name = (limit: number) => `N${'a.b-c'.repeat(Math.floor((limit - 200) / 10))}`;

  const requests = () => {
    const secrets = stack.secrets as unknown as { refundid: { bearerToken: string }; optty: { notificationSecret: string }; ap21: { pushApiKey: string } };
    const bearer = { authorization: `Bearer ${secrets.refundid.bearerToken}` };
    const json = (limit: number) => JSON.stringify({ [filler(limit)]: filler(limit).slice(0, 100) });
    const segment = filler(6_000);
    return [
      { path: `/apace/orders/${segment}/refunds/${segment}/verification?auth_token=${segment}`, method: 'GET', input: segment },
      { path: `/apace/orders/o1/refunds/r1/notification?auth_token=${segment}`, method: 'POST', type: 'application/json', body: json(32 * 1024) },
      { path: `/refundid/order?order_number=${segment}`, method: 'GET', headers: bearer, input: segment },
      { path: '/refundid/refund', method: 'POST', headers: bearer, type: 'application/json', body: json(64 * 1024) },
      { path: '/providers/paypro/ipn', method: 'POST', type: 'application/x-www-form-urlencoded', body: `${filler(60 * 1024)}=${filler(1000)}` },
      { path: `/providers/optty/notifications?token=${secrets.optty.notificationSecret}`, method: 'POST', type: 'application/json', body: json(16 * 1024) },
      { path: '/providers/addon-payments/status', method: 'POST', type: 'application/xml', body: `<${name(32 * 1024)}/>` },
      { path: '/providers/addon-payments/status', method: 'POST', type: 'application/json', body: json(32 * 1024) },
      {
        path: '/ap21/returns',
        method: 'POST',
        headers: { 'x-api-key': secrets.ap21.pushApiKey },
        type: 'text/xml',
        body: `<ReturnOrder><${name(30 * 1024)}>1</${name(30 * 1024)}></ReturnOrder>`,
      },
    ];
  };

  it('answers each with a 4xx that says back at most MAX_MESSAGE_CHARS of it, and writes nothing', async () => {
    for (const request of requests()) {
      const sent = request.body ?? request.input ?? '';
      const response = await fetch(`${stack.url}${request.path}`, {
        method: request.method,
        headers: { ...request.headers, ...(request.type && { 'content-type': request.type }) },
        ...(request.body !== undefined && { body: request.body }),
      });
      const answer = await response.text();
      expect(`${request.path.slice(0, 40)}: ${response.status}`).toMatch(/: 4\d\d$/);
      // Kilobytes sent, at most MAX_MESSAGE_CHARS of them said back.
      expect(sent.length).toBeGreaterThan(2_500);
      expect(answer.length).toBeLessThan(MAX_MESSAGE_CHARS + 200);
    }
    expect(await tableSnapshot(stack.dynamo.endpoint)).toEqual(before);
  });
});
