import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDispatcher } from '../../lambdas/functions/dispatch-runtime';
import { runOps } from '../../tools/ops/cli';
import { readStackOutputs, type StackOutputsReader } from '../../tools/ops/target';
import { startProviderSimulators, type ProviderSimulators } from '../../local/simulators';
import { startAwsFakes, type AwsFakes } from '../support/aws-fakes';
import { demoOrderWithRefund, offeredRefund, orderWithRefund } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
let sims: ProviderSimulators;
let env: NodeJS.ProcessEnv;

const noOutputs: StackOutputsReader = () => Promise.reject(new Error('no AWS credentials in tests'));

/** Runs one command in process, as `npm run ops -- …` would, and captures what it prints. */
async function ops(argv: string[], readOutputs: StackOutputsReader = noOutputs) {
  let out = '';
  let err = '';
  const code = await runOps(argv, { out: (text) => (out += `${text}\n`), err: (text) => (err += `${text}\n`) }, { env, readOutputs, now: () => new Date() });
  return { code, out, err };
}

const now = () => new Date().toISOString();
const ctx = () => ({ now: now(), claimWindowMs: 0 });
/** The demo order's belt (line 2, 45.00 AUD): what the refunds an operator handles here return. */
const BELT = { lines: { '2': 1 }, amount: { minor: 4500, currency: 'AUD' } };

beforeAll(async () => {
  stack = await startTestStack();
  sims = await startProviderSimulators(stack.secrets, { apaceProcessedDelayMs: 50, apaceWebhookRetryGapMs: 100 });
  env = { ...process.env, ...sims.env };

  // Paid through Apace by the webhook, with a duplicate webhook kept in the inbox. Apace has never
  // heard of the offer id, so reconcile must report it as drift.
  const paid = await offeredRefund(stack.runtime.store, 'ops-paid');
  await stack.runtime.store.applyEvent(paid.orderId, paid.refundId, 'apace_paid', ctx(), { actor: 'apace', note: 'Apace refund x: pending' });
  await stack.runtime.store.recordInbound(
    paid.orderId,
    { source: 'apace', key: 'dup', raw: '{}', note: 'Apace pending not applied: refund is paid via apace (duplicate)' },
    now(),
  );

  // A card reversal the provider refused for good: waiting for an operator.
  await demoOrderWithRefund(stack.runtime.store, 'ops-review', { ...BELT, source: { kind: 'ap21_return', ref: 'RET-9' } }, { actor: 'ap21' });
  await stack.runtime.store.applyEvent('ops-review', 'ops-review-r1', 'reversal_submitted', ctx(), { actor: 'dispatcher' });
  await stack.runtime.store.applyEvent(
    'ops-review',
    'ops-review-r1',
    'review_required',
    { ...ctx(), reason: 'provider refused the reversal: card expired' },
    { actor: 'dispatcher' },
  );

  // Reversed on the card through Optty by the real dispatcher: Optty's view agrees with ours.
  sims.optty.api.seed?.({ reference: 'optty-tx-1', captured: { minor: 3000, currency: 'AUD' } });
  await orderWithRefund(
    stack.runtime.store,
    'ops-optty',
    { provider: 'optty', transactionId: 'optty-tx-1' },
    { valueMinor: 3000, actor: 'ap21', source: { kind: 'ap21_return', ref: 'RET-10' } },
  );
  await createDispatcher(stack.runtime, env).processOrder('ops-optty');
});
afterAll(async () => {
  await sims.close();
  await stack.close();
});

describe('npm run ops -- timeline <orderId>', () => {
  it('shows the ledger, the refunds, and every change and kept inbound message in time order', async () => {
    const { code, out } = await ops(['timeline', 'ops-paid']);
    expect(code).toBe(0);
    expect(out).toContain('Order ops-paid (AUD)');
    expect(out).toContain('ledger: consistent');
    const events = ['order_opened', 'refund_created', 'offer_created', 'apace_paid', 'inbound (not applied)'];
    const positions = events.map((event) => out.indexOf(event, out.indexOf('Timeline')));
    expect(positions.every((position) => position > 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(out).toMatch(/apace_paid\s+ops-paid-r1\s+offered → paid/);
  });

  it('answers --json with the stored order and its inbound records', async () => {
    const { code, out } = await ops(['timeline', 'ops-paid', '--json']);
    expect(code).toBe(0);
    const parsed = JSON.parse(out) as { order: { orderId: string; refunds: Record<string, { state: string }> }; inbound: unknown[]; ledgerProblems: unknown[] };
    expect(parsed.order.refunds['ops-paid-r1']?.state).toBe('paid');
    expect(parsed.inbound).toHaveLength(1);
    expect(parsed.ledgerProblems).toEqual([]);
  });

  it('refuses an unknown order with exit code 1 and says where it looked', async () => {
    const { code, out, err } = await ops(['timeline', 'no-such-order']);
    expect({ code, out }).toEqual({ code: 1, out: '' });
    expect(err).toContain('no order "no-such-order" in local (table refund-relay-test)');
  });
});

describe('npm run ops -- refund <refundId>', () => {
  it('finds the refund by its id alone and shows its state, references and own timeline', async () => {
    const { code, out } = await ops(['refund', 'ops-review-r1']);
    expect(code).toBe(0);
    expect(out).toContain('Refund ops-review-r1 of order ops-review');
    expect(out).toMatch(/state\s+manual_review \(channel reversal\)/);
    expect(out).toMatch(/reason\s+provider refused the reversal: card expired/);
    expect(out).toMatch(/reversal_submitted\s+reversal_pending → reversal_submitted/);
    expect(out).not.toContain('order_opened');
  });

  it('refuses an unknown refund with exit code 1', async () => {
    const { code, err } = await ops(['refund', 'no-such-refund']);
    expect(code).toBe(1);
    expect(err).toContain('no refund "no-such-refund"');
  });
});

describe('npm run ops -- manual-review', () => {
  it('lists exactly the refunds in manual review, with their reasons', async () => {
    const { code, out } = await ops(['manual-review', '--json']);
    expect(code).toBe(0);
    const listed = JSON.parse(out) as { refundId: string; reason: string }[];
    expect(listed.map((entry) => entry.refundId)).toEqual(['ops-review-r1']);
    expect(listed[0]?.reason).toBe('provider refused the reversal: card expired');
    const text = await ops(['manual-review']);
    expect(text.out).toMatch(/^1 refund\(s\) in manual review in local \(scanned all \d+ order\(s\)/);
    expect(text.out).toMatch(/ops-review\s+ops-review-r1\s+reversal\s+AUD 45\.00\s+1\s+provider refused/);
  });
});

describe('npm run ops -- reconcile', () => {
  it('asks each provider about our paid refunds and reports drift with exit code 2', async () => {
    const { code, out } = await ops(['reconcile', '--json']);
    const report = JSON.parse(out) as { findings: { refundId: string; verdict: string; provider: string }[] };
    const verdicts = Object.fromEntries(report.findings.map((finding) => [finding.refundId, `${finding.verdict}/${finding.provider}`]));
    expect(verdicts).toEqual({
      // We booked an Apace payout Apace never made.
      'ops-paid-r1': 'drift/not_paid',
      // The provider paid it, as we booked.
      'ops-optty-r1': 'agrees/paid',
      // Submitted to EPG, which has no status query.
      'ops-review-r1': 'unconfirmed/unknown',
    });
    expect(code).toBe(2);
    expect(sims.payoutsByReference().get('ops-optty-r1')).toBe(1);
  });

  it('looks only at refunds changed since --since, and refuses a bad --limit', async () => {
    const later = await ops(['reconcile', '--since', new Date(Date.now() + 60_000).toISOString()]);
    expect(later.code).toBe(0);
    expect(later.out).toContain('Reconciled 0 refund(s)');
    const bad = await ops(['reconcile', '--limit', '0']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('--limit must be a whole number');
  });
});

describe('npm run ops -- redrive <refundId>', () => {
  it('moves a manual-review reversal back to pending with a fresh attempt budget, audited as the operator', async () => {
    const { code, out } = await ops(['redrive', 'ops-review-r1']);
    expect(code).toBe(0);
    expect(out).toContain('manual_review → reversal_pending');
    expect(out).toContain('the local sweeper picks it up');
    const order = (await stack.runtime.store.getOrder('ops-review'))!;
    expect(order.refunds['ops-review-r1']).toMatchObject({ state: 'reversal_pending', attempts: 0 });
    expect(order.timeline.at(-1)).toMatchObject({ actor: 'operator', event: 'redrive_reversal', note: expect.stringMatching(/^redriven by /) });
    // Due now, so the sweeper finds it.
    expect(await stack.runtime.store.findDueOrders(new Date().toISOString(), 100)).toContain('ops-review');
  });

  it('refuses a refund that is not in manual review, and an unknown one', async () => {
    const again = await ops(['redrive', 'ops-review-r1']);
    expect(again.code).toBe(1);
    expect(again.err).toContain('is reversal_pending, not in manual review');
    const unknown = await ops(['redrive', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('no refund "nope"');
  });

  it('will not take an Apace refund off Apace while Apace may still pay it', async () => {
    const { orderId, refundId } = await offeredRefund(stack.runtime.store, 'ops-apace');
    await stack.runtime.store.applyEvent(orderId, refundId, 'offer_cancel_started', ctx(), { actor: 'dispatcher' });
    await stack.runtime.store.applyEvent(
      orderId,
      refundId,
      'review_required',
      { ...ctx(), reason: 'Apace cancel failed after 8 attempts' },
      { actor: 'dispatcher' },
    );
    // Apace asks again (and is recorded) while the refund waits for an operator.
    await stack.runtime.store.recordVerification(orderId, refundId, now());
    const { code, err } = await ops(['redrive', refundId]);
    expect(code).toBe(1);
    expect(err).toMatch(/Apace was told allow_refund at .* and may still pay until/);
    expect((await stack.runtime.store.getOrder(orderId))!.refunds[refundId]!.state).toBe('manual_review');
  });
});

describe('npm run ops -- reroute|release <refundId> --reason <text>', () => {
  it('redrive --reason writes why to the timeline beside the operator', async () => {
    const refundId = await inReview('ops-redrive-reason', 'reversal');
    const { code } = await ops(['redrive', refundId, '--reason', 'EPG is back']);
    expect(code).toBe(0);
    const order = (await stack.runtime.store.getOrder('ops-redrive-reason'))!;
    expect(order.timeline.at(-1)).toMatchObject({ event: 'redrive_reversal', note: expect.stringMatching(/^redriven by .*: EPG is back$/) });
  });

  /** A refund of its own order, parked in manual review on `route`. */
  async function inReview(orderId: string, route: 'reversal' | 'apace') {
    const { store } = stack.runtime;
    if (route === 'apace') {
      const { refundId } = await offeredRefund(store, orderId);
      await store.applyEvent(orderId, refundId, 'offer_cancel_started', ctx(), { actor: 'dispatcher' });
      await store.applyEvent(orderId, refundId, 'review_required', { ...ctx(), reason: 'Apace cancel failed after 8 attempts' }, { actor: 'dispatcher' });
      return refundId;
    }
    const { refundId } = await demoOrderWithRefund(
      store,
      orderId,
      { ...BELT, route, source: { kind: 'ap21_return', ref: `RET-${orderId}` } },
      { actor: 'ap21' },
    );
    await store.applyEvent(orderId, refundId, 'review_required', { ...ctx(), reason: 'provider refused' }, { actor: 'dispatcher' });
    return refundId;
  }

  it('re-routes a reversal in review to card reversal, with the reason on the refund and in the timeline', async () => {
    const refundId = await inReview('ops-reroute', 'reversal');
    const { code, out } = await ops(['reroute', refundId, '--reason', 'EPG fixed the merchant account']);
    expect([code, out]).toEqual([0, expect.stringContaining('manual_review → reversal_pending (rerouted_by_operator)')]);
    const order = (await stack.runtime.store.getOrder('ops-reroute'))!;
    expect(order.refunds[refundId]).toMatchObject({
      state: 'reversal_pending',
      channel: 'reversal',
      attempts: 0,
      reason: expect.stringContaining('EPG fixed'),
    });
    expect(order.timeline.at(-1)).toMatchObject({
      actor: 'operator',
      event: 'rerouted_by_operator',
      note: expect.stringMatching(/^re-routed to card reversal by .*: EPG fixed/),
    });
  });

  it('re-routes an Apace refund in review through the cancel of its offer (cancel first)', async () => {
    const refundId = await inReview('ops-reroute-apace', 'apace');
    const { code } = await ops(['reroute', refundId, '--reason', 'customer asked for the card']);
    expect(code).toBe(0);
    const order = (await stack.runtime.store.getOrder('ops-reroute-apace'))!;
    expect(order.refunds[refundId]).toMatchObject({ state: 'offer_cancelling', channel: 'apace' });
    expect(order.timeline.at(-1)).toMatchObject({ event: 'redrive_apace', note: expect.stringContaining('customer asked for the card') });
  });

  it('releases a refund in review: its units are available again, the reason recorded', async () => {
    const refundId = await inReview('ops-release', 'reversal');
    const { code } = await ops(['release', refundId, '--reason', 'refunded in store']);
    expect(code).toBe(0);
    const order = (await stack.runtime.store.getOrder('ops-release'))!;
    expect(order.refunds[refundId]).toMatchObject({ state: 'released', reason: expect.stringContaining('refunded in store') });
    expect(order.lines['2']).toMatchObject({ reserved: 0, refunded: 0, available: 1 });
    expect(order.timeline.at(-1)).toMatchObject({ actor: 'operator', event: 'released_by_operator', note: expect.stringContaining('refunded in store') });
  });

  it('releases a card reversal once sent to a provider only after the provider record was checked', async () => {
    const { store } = stack.runtime;
    const { refundId } = await demoOrderWithRefund(store, 'ops-release-sent', { ...BELT, source: { kind: 'ap21_return', ref: 'RET-sent' } }, { actor: 'ap21' });
    // Sent to the provider, then no final answer: the money may have moved.
    await store.applyEvent('ops-release-sent', refundId, 'reversal_submitted', ctx(), { actor: 'dispatcher' });
    await store.applyEvent('ops-release-sent', refundId, 'review_required', { ...ctx(), reason: 'no final answer from the provider' }, { actor: 'dispatcher' });
    const refused = await ops(['release', refundId, '--reason', 'customer says unpaid']);
    expect([refused.code, refused.err]).toEqual([1, expect.stringContaining("check the provider's own record")]);
    expect((await store.getOrder('ops-release-sent'))!.refunds[refundId]).toMatchObject({ state: 'manual_review' });
    const checked = await ops(['release', refundId, '--reason', 'EPG console shows no refund', '--provider-checked']);
    expect(checked.code).toBe(0);
    expect((await store.getOrder('ops-release-sent'))!.refunds[refundId]).toMatchObject({ state: 'released' });
  });

  it('needs a reason, and a refund in manual review', async () => {
    const refundId = await inReview('ops-no-reason', 'reversal');
    expect((await ops(['release', refundId])).err).toContain('release needs a reason');
    expect((await ops(['reroute', refundId, '--reason', '  '])).code).toBe(1);
    expect((await ops(['release', 'ops-reroute-r1', '--reason', 'x'])).err).toContain('is reversal_pending, not in manual review');
  });
});

describe('npm run ops -- egress-ips --stage <s>', () => {
  it('lists the addresses of the allocations a stage pins, as the deployed stack read them from AWS', async () => {
    const { code, out } = await ops(['egress-ips', '--stage', 'prod', '--json'], async () => ({ EgressIps: '198.51.100.10,198.51.100.11' }));
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ stage: 'prod', source: 'pinned-allocations', ips: ['198.51.100.10', '198.51.100.11'] });
    const offline = await ops(['egress-ips', '--stage', 'prod']);
    expect(offline.code).toBe(1);
    expect(offline.err).toContain('aws ec2 describe-addresses --region ap-southeast-2 --allocation-ids eipalloc-00000000000000001 eipalloc-00000000000000002');
  });

  it('reads stack-allocated IPs from the stack output, and says where to find them when it cannot', async () => {
    const deployed = await ops(['egress-ips', '--stage', 'dev'], async () => ({ EgressIps: '198.51.100.7' }));
    expect(deployed.code).toBe(0);
    expect(deployed.out).toContain('198.51.100.7');
    const offline = await ops(['egress-ips', '--stage', 'dev']);
    expect(offline.code).toBe(1);
    expect(offline.err).toContain('output EgressIps of stack refund-relay-dev in ap-southeast-2');
    expect(offline.err).toContain('aws cloudformation describe-stacks --stack-name refund-relay-dev');
  });

  it('needs a stage', async () => {
    const { code, err } = await ops(['egress-ips']);
    expect(code).toBe(1);
    expect(err).toContain('egress-ips needs --stage <dev|staging|prod>');
  });
});

describe('against a deployed stage (--stage), through the real AWS SDK clients', () => {
  let fakes: AwsFakes;
  const saved: Record<string, string | undefined> = {};
  const awsEnv = () => ({
    AWS_ENDPOINT_URL_CLOUDFORMATION: fakes.url,
    AWS_ENDPOINT_URL_SQS: fakes.url,
    AWS_ENDPOINT_URL_DYNAMODB: stack.dynamo.endpoint,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });

  beforeAll(async () => {
    fakes = await startAwsFakes();
    fakes.stacks.set('refund-relay-staging', {
      TableName: 'refund-relay-test',
      DispatchQueueUrl: `${fakes.url}/000000000000/dispatch`,
      EgressIps: '198.51.100.8,198.51.100.9',
    });
    // The SDK reads endpoints and credentials from the process environment.
    for (const [name, value] of Object.entries(awsEnv())) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
    env = { ...process.env, ...sims.env };
  });
  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await fakes.close();
  });

  const withStack = (argv: string[]) => ops(argv, readStackOutputs);

  it('finds the stage table from its stack outputs and reads refunds from it', async () => {
    const { code, out } = await withStack(['refund', 'ops-paid-r1', '--stage', 'staging']);
    expect(code).toBe(0);
    expect(out).toContain('Refund ops-paid-r1 of order ops-paid');
  });

  it('redrives and rings the stage dispatch queue', async () => {
    const { orderId, refundId } = await offeredRefund(stack.runtime.store, 'ops-stage');
    for (const event of ['offer_cancel_started', 'offer_cancelled', 'reversal_submitted'] as const)
      await stack.runtime.store.applyEvent(orderId, refundId, event, ctx(), { actor: 'dispatcher' });
    await stack.runtime.store.applyEvent(orderId, refundId, 'review_required', { ...ctx(), reason: 'no final answer' }, { actor: 'dispatcher' });
    const { code, out } = await withStack(['redrive', refundId, '--stage', 'staging']);
    expect(code).toBe(0);
    expect(out).toContain('the dispatcher was rung through the dispatch queue');
    expect(fakes.sqsMessages).toEqual([{ queueUrl: `${fakes.url}/000000000000/dispatch`, body: JSON.stringify({ orderId }) }]);
  });

  it('reads stack-allocated egress IPs through CloudFormation', async () => {
    const { code, out } = await withStack(['egress-ips', '--stage', 'staging', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ stage: 'staging', source: 'stack-allocated', ips: ['198.51.100.8', '198.51.100.9'] });
  });

  it('says when a stage is not deployed', async () => {
    const { code, err } = await withStack(['timeline', 'ops-paid', '--stage', 'dev']);
    expect(code).toBe(1);
    expect(err).toContain('cannot read stack refund-relay-dev in ap-southeast-2');
  });
});

describe('operator mistakes', () => {
  it('names the stages when given an unknown one, before touching anything', async () => {
    const { code, err } = await ops(['timeline', 'ops-paid', '--stage', 'qa']);
    expect(code).toBe(1);
    expect(err).toContain('unknown stage "qa": the stages are dev, staging, prod');
  });

  it('prints the usage for an unknown command or option', async () => {
    for (const argv of [['launch'], ['timeline', 'x', '--colour']]) {
      const { code, err } = await ops(argv);
      expect(code).toBe(1);
      expect(err).toContain('npm run ops -- <command>');
    }
  });

  it('asks retry-ap21 for one set-aside Ap21 order or --all, and refuses an order with nothing set aside', async () => {
    for (const [argv, message] of [
      [['retry-ap21'], 'retry-ap21 needs ap21OrderId'],
      [['retry-ap21', '20784', '--all'], 'an Ap21 order id or --all, not both'],
      [['retry-ap21', '20784'], 'Ap21 order "20784" has nothing set aside in local'],
    ] as const) {
      const { code, err } = await ops([...argv]);
      expect({ argv, code, err }).toEqual({ argv, code: 1, err: expect.stringContaining(message) as string });
    }
  });

  it('exits 1 from the real entry point, as npm run ops does', async () => {
    const tsx = join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
    const run = promisify(execFile)(tsx, [join(__dirname, '..', '..', 'tools', 'ops', 'main.ts'), 'refund', 'x', '--stage', 'qa'], { env: process.env });
    await expect(run).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('the stages are dev, staging, prod') });
  }, 20_000);
});
