import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { addRefund, openOrder, type Order } from '../../lambdas/domain/order';
import { createDispatcher, createInboxReplay } from '../../lambdas/functions/dispatch-runtime';
import { LocalQueue } from '../../lambdas/services/local-queue';
import { replayInbox, sweep } from '../../lambdas/services/sweeper';
import { runDemo, type DemoOrder } from '../../local/demo-flows';
import { applyLocalEnvironment, localSettings } from '../../local/environment';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import { startConsole, type RunningConsole } from '../../tools/console/server';
import { find } from '../../tools/console/views';
import { localTarget } from '../../tools/ops/target';
import { orderWithRefund } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * The refund console in a real headless Chromium (Debian's `chromium`, driven by playwright-core),
 * against refund-relay on dynalite and the provider simulators after the demo's own flows ran.
 * Without a chromium on this machine the suite is skipped, and says so.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium)
  process.stdout.write(`Refund console browser tests: SKIPPED — no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)\n`);
const describeInBrowser = haveChromium ? describe : describe.skip;
/** Screenshots for the README, when asked: CONSOLE_SCREENSHOTS=1. */
const SCREENSHOTS = process.env.CONSOLE_SCREENSHOTS === '1' ? join(__dirname, '../../docs/console') : undefined;

let stack: TestStack;
let sims: ProviderSimulators;
let sweeper: NodeJS.Timeout;
let queue: LocalQueue;
let demo: readonly DemoOrder[];
let consoleApp: RunningConsole;
let readOnlyConsole: RunningConsole;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const BIG_ORDER = 'console-500';
const REVIEW_ORDER = 'console-review';
const REVIEW_TX = 'epg-console-review';

describeInBrowser('the refund console in a browser', () => {
  beforeAll(async () => {
    // What `npm start` sets for the demo (loopback callers, Ap21's card digits and payment mapping), quicker retries.
    const local: NodeJS.ProcessEnv = {};
    applyLocalEnvironment(localSettings({}), local);
    const demoSettings = ['REFUNDID_ALLOWED_IPS', 'PAYPRO_IPN_SOURCE_IPS', 'AP21_PUSH_ALLOWED_IPS', 'AP21_CARD_LAST_FOUR_FIELD', 'AP21_PAYMENT_PROVIDERS'];
    stack = await startTestStack({
      ...Object.fromEntries(demoSettings.map((name) => [name, local[name]!])),
      DISPATCH_BASE_DELAY_MS: '100',
      DISPATCH_SYNC_DELAY_MS: '200',
    });
    sims = await startProviderSimulators(stack.secrets, { apaceProcessedDelayMs: 20, apaceWebhookRetryGapMs: 100 });
    Object.assign(process.env, sims.env);
    const dispatcher = createDispatcher(stack.runtime);
    queue = new LocalQueue((orderId) => dispatcher.processOrder(orderId));
    const inbox = createInboxReplay(stack.runtime);
    let sweeping = false;
    sweeper = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      void replayInbox(inbox, Date.now())
        .then(() => sweep(stack.runtime.store, queue, Date.now()))
        .catch(() => undefined)
        .finally(() => (sweeping = false));
    }, 100);

    const said: string[] = [];
    const outcome = await runDemo({
      store: stack.runtime.store,
      simulators: sims.host.url,
      api: stack.url,
      secretsFile: stack.secretsFile,
      say: (line) => said.push(line),
      stepTimeoutMs: 15_000,
      pollMs: 50,
    });
    if (outcome.failures) throw new Error(`the demo failed:\n${said.join('\n')}`);
    demo = outcome.orders;

    await bigOrder();
    // A card reversal held for an operator from the start (as a tender rule that cannot decide holds one).
    sims.addonPayments.seed({ transactionId: REVIEW_TX, amount: { minor: 5990, currency: 'AUD' } });
    const now = new Date().toISOString();
    const order = openOrder(
      {
        orderId: REVIEW_ORDER,
        currency: 'AUD',
        lines: [{ lineId: '1', quantity: 1, valueMinor: 5990, title: 'Linen shirt' }],
        payments: [{ paymentId: 'p1', capturedMinor: 5990, provider: 'addon_payments', transactionId: REVIEW_TX }],
        customer: { email: 'sam.review@example.com' },
      },
      now,
    );
    await stack.runtime.store.putOrder(order);
    await stack.runtime.store.createRefund(
      REVIEW_ORDER,
      {
        refundId: `${REVIEW_ORDER}-r1`,
        lines: { '1': 1 },
        paymentId: 'p1',
        amount: { minor: 5990, currency: 'AUD' },
        route: 'reversal',
        source: { kind: 'manual', ref: 'test' },
        held: 'the tender rule could not decide',
      },
      now,
      { actor: 'seed' },
    );

    const target = localTarget(process.env);
    consoleApp = await startConsole({ target, operator: 'casey', port: 0 });
    readOnlyConsole = await startConsole({ target, operator: 'casey', readOnly: true, port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (error) => process.stdout.write(`page error: ${error.message}\n`));
    await page.goto(consoleApp.loginUrl);
  }, 60_000);

  afterAll(async () => {
    clearInterval(sweeper);
    await browser?.close();
    await consoleApp?.close();
    await readOnlyConsole?.close();
    await queue?.stop();
    await sims?.close();
    await stack?.close();
  });

  async function search(query: string): Promise<void> {
    await page.fill('#q', query);
    await page.press('#q', 'Enter');
  }

  it('drops the session token from the address bar once signed in', () => {
    expect(page.url()).toBe(`${consoleApp.url}/`);
  });

  it('finds each demo order by its number and by a provider reference, its refunds paid and its timeline drawn', async () => {
    expect(demo.length).toBeGreaterThanOrEqual(6);
    for (const order of demo) {
      for (const query of [order.orderNumber ?? order.orderId, order.providerRef!]) {
        await search(query);
        await page.waitForSelector(`#order-title:has-text("${order.orderId}")`);
        for (const refundId of order.refundIds) expect(await page.textContent(`#refunds tr[data-refund="${refundId}"] .state`)).toBe('paid');
        expect(await page.locator('#sequence g.ev').count()).toBeGreaterThan(3);
        expect(await page.locator('#sequence line.money').count()).toBeGreaterThanOrEqual(order.refundIds.length);
      }
    }
  });

  it('shows a raw message one click from its step, masked as in the logs', async () => {
    const pushed = demo.find((order) => order.orderNumber)!;
    await search(pushed.orderNumber!);
    await page.waitForSelector(`#order-title:has-text("${pushed.orderId}")`);
    // Refundid's "refunding" push, as received, from the step it caused.
    await page.locator('#sequence g.ev', { hasText: 'refund_created' }).filter({ hasText: '✉' }).first().click();
    const raw = await page.locator('#raw').textContent();
    expect(JSON.parse(raw!)).toMatchObject({ status: 'refunding', line_items: [{ merchant_order_ref: pushed.orderId }] });
    expect(await page.textContent('#detail')).toContain('Raw message from refundid');
    expect(raw).not.toMatch(/[A-Za-z0-9._%+-]{2,}@example\.com/);
    if (SCREENSHOTS) {
      await mkdir(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, 'order.png'), fullPage: true });
    }
  });

  it('finds an order by the customer e-mail (a bounded scan, said so) and never shows the address', async () => {
    await search('sam.review@example.com');
    await page.waitForSelector(`#order-title:has-text("${REVIEW_ORDER}")`);
    expect(await page.content()).not.toContain('sam.review@example.com');
    expect(await page.textContent('main')).toContain('s***@example.com');
  });

  it('bounds the scan an e-mail search needs, and says when it stopped short', async () => {
    const bounded = await find(localTarget(process.env), 'sam.review@example.com', { pageSize: 2, maxPages: 1 });
    expect(bounded.scanIncomplete).toBe(true);
    expect(bounded.scanned).toBeLessThanOrEqual(2);
    await page.goto(`${consoleApp.url}/#/find/nobody%40example.com`);
    await page.waitForSelector('#matches');
    expect(await page.textContent('main')).toMatch(/Nothing found for “n\*\*\*@example.com”.*No index holds this: \d+ order\(s\) were scanned/s);
  });

  it('redrives a refund from the manual-review queue, with a confirmed reason, and the timeline records who and why', async () => {
    await page.click('#nav-review');
    const row = page.locator(`#review tr[data-refund="${REVIEW_ORDER}-r1"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain('reversal');
    await row.locator('button[data-action="redrive"]').click();
    await page.click('#confirm-ok');
    expect(await page.textContent('#confirm-error')).toBe('A reason is required.');
    expect((await refundOf(REVIEW_ORDER))?.state).toBe('manual_review');
    await page.fill('#confirm-reason', 'EPG now holds the original payment');
    await page.click('#confirm-ok');
    await page.waitForSelector('#action-result');
    expect(await page.textContent('#action-result')).toContain('manual_review → reversal_pending');
    await waitFor(async () => (await refundOf(REVIEW_ORDER))?.state === 'paid', 10_000);

    await search(REVIEW_ORDER);
    await page.waitForSelector(`#order-title:has-text("${REVIEW_ORDER}")`);
    const redriven = page.locator('#sequence g.ev', { hasText: 'redrive_reversal' });
    await redriven.click();
    expect(await page.textContent('#detail')).toContain('redriven by casey: EPG now holds the original payment');
    expect(await page.textContent(`#refunds tr[data-refund="${REVIEW_ORDER}-r1"] .state`)).toBe('paid');
  });

  it('refuses a request without the session token, and an action without the CSRF token, changing nothing', async () => {
    const held = await heldRefund('console-refused');
    const order = await fetch(`${consoleApp.url}/api/order?id=${held.orderId}`);
    expect(order.status).toBe(401);
    const page401 = await fetch(`${consoleApp.url}/`);
    expect(page401.status).toBe(401);
    const body = JSON.stringify({ refundId: held.refundId, orderId: held.orderId, reason: 'forged' });
    const noToken = await fetch(`${consoleApp.url}/api/actions/release`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(noToken.status).toBe(401);
    // Signed in, but without the page's CSRF token (what a forged cross-site form would send).
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const noCsrf = await fetch(`${consoleApp.url}/api/actions/release`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body });
    expect(noCsrf.status).toBe(403);
    const wrongCsrf = await fetch(`${consoleApp.url}/api/actions/redrive`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': 'guess' },
      body,
    });
    expect(wrongCsrf.status).toBe(403);
    // A page elsewhere reaching the console through a DNS name rebound to 127.0.0.1.
    const rebound = await new Promise<number>((resolve, reject) =>
      request(`${consoleApp.url}/api/order?id=${held.orderId}`, { headers: { cookie, host: 'attacker.example' } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      })
        .on('error', reject)
        .end(),
    );
    expect(rebound).toBe(421);
    expect((await refundOf(held.orderId))?.state).toBe('manual_review');
    expect((await stack.runtime.store.readTimeline(held.orderId)).filter((entry) => entry.actor === 'operator')).toEqual([]);
  });

  it('with --read-only shows no actions and refuses them even with both tokens', async () => {
    const held = await heldRefund('console-read-only');
    const other = await context.newPage();
    await other.goto(readOnlyConsole.loginUrl);
    await other.goto(`${readOnlyConsole.url}/#/order/${held.orderId}`);
    await other.waitForSelector('#refunds');
    expect(await other.locator('button[data-action]').count()).toBe(0);
    expect(await other.isVisible('#read-only-badge')).toBe(true);
    const csrf = await other.getAttribute('meta[name="csrf-token"]', 'content');
    const cookie = (await context.cookies(readOnlyConsole.url)).map((c) => `${c.name}=${c.value}`).join('; ');
    const refused = await fetch(`${readOnlyConsole.url}/api/actions/release`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf! },
      body: JSON.stringify({ refundId: held.refundId, orderId: held.orderId, reason: 'read-only' }),
    });
    expect(refused.status).toBe(403);
    expect((await refundOf(held.orderId))?.state).toBe('manual_review');
    await other.close();
  });

  it('renders an order with 500 refunds in well under a second', async () => {
    await page.goto(`${consoleApp.url}/#/review`);
    await page.waitForSelector('#review');
    const started = Date.now();
    await page.goto(`${consoleApp.url}/#/order/${BIG_ORDER}`);
    await page.waitForSelector(`#refunds tr[data-refund="${BIG_ORDER}-r500"]`);
    const elapsed = Date.now() - started;
    expect(await page.locator('#refunds tr[data-refund]').count()).toBe(500);
    expect(elapsed).toBeLessThan(1000);
  });

  it('draws return→money per channel, refunds per state and per day, and provider failure rates', async () => {
    await page.click('#nav-charts');
    await page.waitForSelector('#chart-per-state');
    for (const channel of ['reversal', 'apace', 'refundid'])
      expect(await page.locator(`#chart-return-to-money svg[data-channel="${channel}"] rect`).count()).toBe(10);
    expect(await page.textContent('#chart-per-state')).toContain('paid');
    expect(await page.locator('#chart-per-day rect').count()).toBe(28);
    expect(await page.textContent('#chart-failures')).toContain('Addon Payments (EPG)');
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, 'charts.png'), fullPage: true });
  });
});

async function refundOf(orderId: string) {
  const order = await stack.runtime.store.getOrder(orderId);
  return order && Object.values(order.refunds)[0];
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A refund that starts in manual review: no dispatcher touches it. */
async function heldRefund(orderId: string): Promise<{ orderId: string; refundId: string }> {
  return orderWithRefund(
    stack.runtime.store,
    orderId,
    { provider: 'optty', transactionId: `${orderId}-tx` },
    { valueMinor: 1000, source: { kind: 'manual', ref: 'test' }, held: 'held for the test' },
  );
}

/** An order of 500 units refunded one by one: 500 refunds on one order item. */
async function bigOrder(): Promise<void> {
  const now = new Date().toISOString();
  let order: Order = openOrder(
    {
      orderId: BIG_ORDER,
      currency: 'AUD',
      lines: [{ lineId: '1', quantity: 500, valueMinor: 500 * 990, title: 'Socks' }],
      payments: [{ paymentId: 'p1', capturedMinor: 500 * 990, provider: 'refundid' }],
    },
    now,
  );
  for (let i = 1; i <= 500; i++) {
    order = addRefund(
      order,
      {
        refundId: `${BIG_ORDER}-r${i}`,
        lines: { '1': 1 },
        paymentId: 'p1',
        amount: { minor: 990, currency: 'AUD' },
        route: 'refundid',
        source: { kind: 'manual', ref: `rma-${i}` },
      },
      now,
    ).order;
  }
  await stack.runtime.store.putOrder(order);
}
