import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ROUTES } from '../../lambdas/routes';
import type { FunctionDefinition } from '../../lib/function-registry';
import { FunctionRegistryError } from '../../lib/functions';
import { STAGES } from '../../lib/stage-config';
import { actionsOf, logicalId, onlyOfType, referencedIds, resourcesOfType, roleStatements, synthesizeStage, type SynthesizedStage } from './support';

/**
 * The registry ready for what lands next (dispatcher, sweeper, poller): entries that call out,
 * consume or feed the dispatch queue, or run on a schedule. The entry files are today's handlers;
 * what is under test is the wiring each entry's options produce.
 */
const CALLER: FunctionDefinition = {
  name: 'apace-notification',
  secrets: ['ap21', 'optty'],
  callsOut: ['ap21', 'optty'],
  table: 'readWrite',
  dispatchQueue: 'send',
  memoryMb: 1024,
  timeoutSeconds: 20,
  schedule: 'rate(5 minutes)',
};
const CONSUMER: FunctionDefinition = { name: 'health', secrets: [], callsOut: [], table: 'read', dispatchQueue: 'consume', memoryMb: 256, timeoutSeconds: 30 };
const VERIFIER: FunctionDefinition = { name: 'apace-verification', secrets: ['apace'], callsOut: [], table: 'readWrite', memoryMb: 512, timeoutSeconds: 10 };
const WORKER_ROUTES = ROUTES.filter((route) => route.fn === CALLER.name || route.fn === VERIFIER.name);

describe('the function registry', () => {
  let synthesized: SynthesizedStage;
  beforeAll(() => {
    synthesized = synthesizeStage(STAGES.staging, { functions: [CALLER, CONSUMER, VERIFIER], routes: WORKER_ROUTES });
  });
  const fnOf = (definition: FunctionDefinition) => synthesized.stack.functions.byName.get(definition.name)!;
  const propertiesOf = (definition: FunctionDefinition) => synthesized.resources[logicalId(fnOf(definition))]!.Properties!;

  it('puts a function that calls out in the private subnets behind the NAT gateways, HTTPS out only', () => {
    const { resources } = synthesized;
    const vpcConfig = propertiesOf(CALLER).VpcConfig as { SubnetIds: unknown[]; SecurityGroupIds: unknown[] };
    const privateSubnets = resourcesOfType(resources, 'AWS::EC2::Subnet')
      .filter(([, subnet]) =>
        (subnet.Properties?.Tags as { Key: string; Value: string }[]).some((tag) => tag.Key === 'aws-cdk:subnet-type' && tag.Value === 'Private'),
      )
      .map(([id]) => ({ Ref: id }));
    expect(vpcConfig.SubnetIds).toEqual(privateSubnets);
    const [groupId] = [...referencedIds(vpcConfig.SecurityGroupIds)];
    expect(resources[groupId!]!.Properties?.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }),
    ]);
    expect(propertiesOf(CONSUMER).VpcConfig).toBeUndefined();
    expect(propertiesOf(VERIFIER).VpcConfig).toBeUndefined();
  });

  it('gives a function that calls out the network-interface rights in a policy that exists before it does', () => {
    const { resources } = synthesized;
    const fnId = logicalId(fnOf(CALLER));
    const roleId = logicalId(fnOf(CALLER).role!);
    const eniPolicies = resourcesOfType(resources, 'AWS::IAM::Policy').filter(
      ([, policy]) => referencedIds(policy.Properties?.Roles).has(roleId) && JSON.stringify(policy.Properties).includes('ec2:CreateNetworkInterface'),
    );
    expect(eniPolicies).toHaveLength(1);
    expect([resources[fnId]!.DependsOn].flat()).toContain(eniPolicies[0]![0]);
    for (const definition of [CONSUMER, VERIFIER]) {
      expect(JSON.stringify(roleStatements(resources, logicalId(fnOf(definition).role!)))).not.toContain('ec2:');
    }
  });

  it('gives each function the base URLs of exactly the providers it calls', () => {
    const variables = (definition: FunctionDefinition) => Object.keys((propertiesOf(definition).Environment as { Variables: object }).Variables);
    const urlVariables = (definition: FunctionDefinition) =>
      variables(definition).filter((name) => name.endsWith('_URL') && name !== 'PUBLIC_BASE_URL' && name !== 'DISPATCH_QUEUE_URL');
    expect(urlVariables(CALLER).sort()).toEqual(['AP21_API_URL', 'OPTTY_API_URL', 'OPTTY_AUTH_URL']);
    const { Variables } = propertiesOf(CALLER).Environment as { Variables: Record<string, unknown> };
    expect(Variables).toMatchObject({
      AP21_API_URL: STAGES.staging.providerUrls.AP21_API_URL,
      OPTTY_API_URL: STAGES.staging.providerUrls.OPTTY_API_URL,
      OPTTY_AUTH_URL: STAGES.staging.providerUrls.OPTTY_AUTH_URL,
    });
    expect(urlVariables(CONSUMER)).toEqual([]);
    expect(urlVariables(VERIFIER)).toEqual([]);
  });

  it('hands every function, behind the API or not, the callback base URL (a dependency cycle would have failed synthesis)', () => {
    const [apiId] = onlyOfType(synthesized.resources, 'AWS::ApiGateway::RestApi');
    for (const definition of [CALLER, CONSUMER, VERIFIER]) {
      const { Variables } = propertiesOf(definition).Environment as { Variables: Record<string, unknown> };
      expect([...referencedIds(Variables.PUBLIC_BASE_URL)].filter((id) => id in synthesized.resources)).toEqual([apiId]);
    }
  });

  it('wires the dispatch queue: the sender may only send, the consumer reads it in bounded concurrent batches with partial failures', () => {
    const { resources, template } = synthesized;
    const queueId = resourcesOfType(resources, 'AWS::SQS::Queue').find(([, queue]) => queue.Properties?.RedrivePolicy)![0];
    const { Variables } = propertiesOf(CALLER).Environment as { Variables: Record<string, unknown> };
    expect(Variables.DISPATCH_QUEUE_URL).toEqual({ Ref: queueId });
    const senderQueueActions = roleStatements(resources, logicalId(fnOf(CALLER).role!))
      .filter((statement) => referencedIds(statement.Resource).has(queueId))
      .flatMap(actionsOf);
    expect(senderQueueActions).toContain('sqs:SendMessage');
    expect(senderQueueActions).not.toContain('sqs:ReceiveMessage');
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
      FunctionName: { Ref: logicalId(fnOf(CONSUMER)) },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      // Bounds the consumer without reserved concurrency, which a new account's quota cannot give.
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    expect(propertiesOf(CONSUMER).ReservedConcurrentExecutions).toBeUndefined();
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
  });

  it('runs a scheduled function on its schedule, never retried or delivered late', () => {
    synthesized.template.resourceCountIs('AWS::Events::Rule', 1);
    synthesized.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(fnOf(CALLER)), 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
        }),
      ],
    });
    synthesized.template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 1);
    synthesized.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: logicalId(fnOf(CALLER)) },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
  });

  it('grants read-only table access without writes', () => {
    const tableActions = roleStatements(synthesized.resources, logicalId(fnOf(CONSUMER).role!))
      .filter((statement) => actionsOf(statement).some((action) => action.startsWith('dynamodb:')))
      .flatMap(actionsOf);
    expect(tableActions.sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:Query']);
  });

  it('keeps cdk-nag clean with functions in the VPC (the network-interface wildcard is acknowledged, with its reason)', () => {
    expect(new AwsSolutionsChecks().validateScope(synthesized.stack).violations).toEqual([]);
  });

  describe('refuses', () => {
    const attempt =
      (functions: readonly FunctionDefinition[], routes = ROUTES) =>
      () =>
        synthesizeStage(STAGES.dev, { functions, routes });

    it('an entry whose handler module does not exist', () => {
      expect(attempt([{ ...VERIFIER, name: 'refund-printer' }], [])).toThrow(
        new FunctionRegistryError('function refund-printer has no entry file lambdas/functions/refund-printer.ts'),
      );
    });

    it('two entries with the same name', () => {
      expect(attempt([VERIFIER, VERIFIER], [])).toThrow(/repeats apace-verification/);
    });

    it('a route whose function is not registered', () => {
      expect(attempt([VERIFIER])).toThrow(/route POST \/apace\/orders\/\{orderId\}\/refunds\/\{refundId\}\/notification needs function apace-notification/);
    });

    it('a handler checking callers against an allowlist the stage does not list', () => {
      expect(attempt([{ ...VERIFIER, sourceAllowlist: { variable: 'PARTNER_IPS', path: '/partner/hook' } }], [])).toThrow(
        new FunctionRegistryError('function apace-verification checks callers against the allowlist of /partner/hook, which stage dev does not list'),
      );
    });

    it('a queue consumer that could outlive the visibility timeout', () => {
      expect(attempt([{ ...CONSUMER, timeoutSeconds: 31 }], [])).toThrow(/consumes the dispatch queue, so its timeout must be at most 30 s/);
    });
  });
});
