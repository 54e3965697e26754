import { FUNCTIONS } from '../../lib/function-registry';
import { STAGES } from '../../lib/stage-config';
import { logicalId, onlyOfType, resourcesOfType, synthesizeStage } from './support';

/**
 * lib/dispatch-queue.ts states how the dispatcher's numbers fit together; this reads them back
 * from the synthesized template (what CloudFormation deploys) and checks the arithmetic.
 */
describe("the dispatcher's time budget, as deployed", () => {
  const { stack, resources } = synthesizeStage(STAGES.prod);
  const dispatcher = FUNCTIONS.find((definition) => definition.dispatchQueue === 'consume')!;
  const fn = resources[logicalId(stack.functions.byName.get(dispatcher.name)!)]!.Properties!;
  const env = (fn.Environment as { Variables: Record<string, string> }).Variables;
  const ms = (name: string) => Number(env[name]);
  const functionTimeoutMs = (fn.Timeout as number) * 1000;
  const [, queue] = resourcesOfType(resources, 'AWS::SQS::Queue').find(([, candidate]) => candidate.Properties?.RedrivePolicy)!;
  const visibilityMs = (queue.Properties?.VisibilityTimeout as number) * 1000;
  const [, mapping] = onlyOfType(resources, 'AWS::Lambda::EventSourceMapping');
  // Optty's refund may first fetch a token: two requests (lambdas/functions/dispatch-runtime.ts callBudget).
  const longestOperationMs = Math.max(ms('APACE_TIMEOUT_MS'), ms('ADDON_PAYMENTS_TIMEOUT_MS'), ms('PAYPRO_TIMEOUT_MS'), 2 * ms('OPTTY_TIMEOUT_MS'));

  it("lets a fresh invocation start any provider's call: timeout > longest operation + margin", () => {
    expect(longestOperationMs + ms('DISPATCH_CALL_MARGIN_MS')).toBeLessThan(functionTimeoutMs);
  });

  it('holds a claim longer than the invocation that took it can run, so the sweeper never takes over a live call', () => {
    expect(ms('DISPATCH_LEASE_MS')).toBeGreaterThan(functionTimeoutMs);
  });

  it('hides a message for six function timeouts, as AWS advises for a Lambda consumer, and never less than one', () => {
    expect(visibilityMs).toBeGreaterThanOrEqual(6 * functionTimeoutMs);
  });

  it('reads batches of 10 with partial failures, at most 5 at once, without reserved concurrency', () => {
    expect(mapping.Properties).toMatchObject({ BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'], ScalingConfig: { MaximumConcurrency: 5 } });
    expect(fn.ReservedConcurrentExecutions).toBeUndefined();
    expect(queue.Properties?.RedrivePolicy).toMatchObject({ maxReceiveCount: 5 });
  });
});
