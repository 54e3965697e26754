import { RemovalPolicy } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SECRET_NAMES } from '../../lambdas/commons/secrets';
import { ROUTES } from '../../lambdas/routes';
import { TABLE } from '../../lambdas/store/table';
import { CUSTOM_METRICS } from '../../lib/alarms';
import { FUNCTIONS } from '../../lib/function-registry';
import { executeApiResource } from '../../lib/inbound-api';
import { PROVIDER_URLS_BY_PROVIDER, STAGE_NAMES, STAGES, type StageName } from '../../lib/stage-config';
import {
  actionsOf,
  apiMethods,
  logicalId,
  onlyOfType,
  referencedIds,
  resourcesOfType,
  roleStatements,
  synthesizeStage,
  type Statement,
  type SynthesizedStage,
} from './support';

const synthesized = new Map<StageName, SynthesizedStage>();
beforeAll(() => {
  for (const stage of STAGE_NAMES) synthesized.set(stage, synthesizeStage(STAGES[stage]));
});

describe.each(STAGE_NAMES)('the %s stack', (stage) => {
  const config = STAGES[stage];
  const get = () => synthesized.get(stage)!;

  it('deploys to the account and region of its stage and needs no AWS call to synthesize (lookups are in cdk.context.json)', () => {
    const { stack, missingContext } = get();
    expect(missingContext).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
    expect(stack.account).toBe(config.account);
    expect(stack.region).toBe(config.region);
  });

  describe('static egress', () => {
    it('runs one NAT gateway per availability zone on exactly the Elastic IPs the stage names, or on retained ones of its own', () => {
      const { resources } = get();
      const natGateways = resourcesOfType(resources, 'AWS::EC2::NatGateway');
      const elasticIps = resourcesOfType(resources, 'AWS::EC2::EIP');
      expect(natGateways).toHaveLength(config.egress.availabilityZones);
      const allocations = natGateways.map(([, nat]) => nat.Properties?.AllocationId);
      if (config.egress.elasticIps) {
        expect(elasticIps).toEqual([]);
        expect(allocations.sort()).toEqual(config.egress.elasticIps.map((ip) => ip.allocationId).sort());
      } else {
        expect(elasticIps).toHaveLength(config.egress.availabilityZones);
        for (const [, eip] of elasticIps) expect([eip.DeletionPolicy, eip.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
        expect(allocations.map((allocation) => (allocation as { 'Fn::GetAtt': string[] })['Fn::GetAtt']).sort()).toEqual(
          elasticIps.map(([id]) => [id, 'AllocationId']).sort(),
        );
      }
    });

    it('outputs the egress IPs to hand to Ap21 and the providers', () => {
      const { template, resources } = get();
      const { Outputs } = template.toJSON() as { Outputs: Record<string, { Value: unknown }> };
      const value = Outputs.EgressIps?.Value;
      if (config.egress.elasticIps) {
        expect(value).toBe(config.egress.elasticIps.map((ip) => ip.publicIp).join(','));
      } else {
        const eipIds = resourcesOfType(resources, 'AWS::EC2::EIP').map(([id]) => id);
        const attributes: unknown[] = [];
        JSON.stringify(value, (key, node: unknown) => {
          if (key === 'Fn::GetAtt') attributes.push(node);
          return node;
        });
        expect(attributes).toEqual(eipIds.map((id) => [id, 'PublicIp']));
      }
    });

    it('reaches DynamoDB and Secrets Manager through VPC endpoints and keeps flow logs', () => {
      const { template } = get();
      template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Gateway',
        ServiceName: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith(['.dynamodb'])] }),
      });
      template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Interface',
        ServiceName: `com.amazonaws.${config.region}.secretsmanager`,
        PrivateDnsEnabled: true,
      });
      template.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL' });
      template.resourceCountIs('AWS::EC2::Subnet', 2 * config.egress.availabilityZones);
    });
  });

  describe('state table', () => {
    it('is the layout of lambdas/store/table.ts: on demand, point-in-time recovery, TTL and the keys-only due index', () => {
      get().template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: [
          { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
        SSESpecification:
          config.tableEncryption === 'customer-managed' ? Match.objectLike({ SSEEnabled: true, KMSMasterKeyId: Match.anyValue() }) : { SSEEnabled: true },
        GlobalSecondaryIndexes: [
          {
            IndexName: TABLE.dueIndex.name,
            KeySchema: [
              { AttributeName: TABLE.dueIndex.partitionKey, KeyType: 'HASH' },
              { AttributeName: TABLE.dueIndex.sortKey, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'KEYS_ONLY' },
          },
        ],
      });
    });

    it(`is ${stage === 'prod' ? 'protected from deletion and retained' : 'deleted or kept as the stage says'}`, () => {
      const [, table] = onlyOfType(get().resources, 'AWS::DynamoDB::Table');
      expect(table.DeletionPolicy).toBe(config.removalPolicy === RemovalPolicy.RETAIN ? 'Retain' : 'Delete');
      expect(table.Properties?.DeletionProtectionEnabled).toBe(config.tableDeletionProtection);
      if (stage === 'prod') expect([table.DeletionPolicy, table.Properties?.DeletionProtectionEnabled]).toEqual(['Retain', true]);
    });
  });

  describe('inbound API', () => {
    it('serves every route of lambdas/routes.ts with its method, through its own function', () => {
      const { stack, resources } = get();
      const methods = apiMethods(resources);
      for (const route of ROUTES) {
        const method = methods.get(`${route.method} ${route.path}`);
        expect(method).toBeDefined();
        const integration = method!.Integration as { Type: string; Uri: unknown };
        expect(integration.Type).toBe('AWS_PROXY');
        expect(referencedIds(integration.Uri)).toContain(logicalId(stack.functions.byName.get(route.fn)!));
      }
      expect(methods.size).toBe(ROUTES.length);
    });

    it('passes every body as raw bytes (binary */*) and logs access without query strings', () => {
      const { template } = get();
      template.hasResourceProperties('AWS::ApiGateway::RestApi', { BinaryMediaTypes: ['*/*'] });
      template.hasResourceProperties('AWS::ApiGateway::Stage', {
        AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.not(Match.stringLikeRegexp('querystring|\\$context\\.path')) },
        MethodSettings: [
          Match.objectLike({ ThrottlingRateLimit: config.apiThrottle.rateLimit, ThrottlingBurstLimit: config.apiThrottle.burstLimit, DataTraceEnabled: false }),
        ],
      });
    });

    it('denies every source IP but the allowlisted ones on each allowlisted path, and leaves other paths open', () => {
      const [, api] = onlyOfType(get().resources, 'AWS::ApiGateway::RestApi');
      const statements = (api.Properties?.Policy as { Statement: Statement[] }).Statement;
      const denies = statements.filter((statement) => statement.Effect === 'Deny');
      expect(statements.filter((statement) => statement.Effect === 'Allow')).toEqual([
        expect.objectContaining({ Action: 'execute-api:Invoke', Resource: 'execute-api:/*/*/*' }),
      ]);
      expect(denies.map((deny) => [deny.Resource, deny.Condition])).toEqual(
        Object.entries(config.ipAllowlists).map(([path, addresses]) => [executeApiResource(path), { NotIpAddress: { 'aws:SourceIp': addresses } }]),
      );
      for (const route of ROUTES) {
        const denied = denies.find((deny) => deny.Resource === executeApiResource(route.path));
        expect(denied?.Condition?.NotIpAddress?.['aws:SourceIp']).toEqual(config.ipAllowlists[route.path]);
      }
    });

    it(config.customDomain ? 'answers on its custom domain, the base of the callback URLs' : 'hands out its own stage URL as the callback base', () => {
      const { template } = get();
      const outputs = (template.toJSON() as { Outputs: Record<string, { Value: unknown }> }).Outputs;
      if (config.customDomain) {
        template.hasResourceProperties('AWS::ApiGateway::DomainName', { DomainName: config.customDomain.domainName, SecurityPolicy: 'TLS_1_2' });
        expect(outputs.PublicBaseUrl?.Value).toBe(`https://${config.customDomain.domainName}`);
      } else {
        template.resourceCountIs('AWS::ApiGateway::DomainName', 0);
        expect(JSON.stringify(outputs.PublicBaseUrl?.Value)).toContain('.execute-api.');
      }
    });
  });

  describe('functions', () => {
    it("hand Refundid's routes the addresses Refundid calls from on this stage (production or sandbox)", () => {
      const { stack, resources } = get();
      for (const name of ['refundid-order', 'refundid-refund']) {
        const fn = resources[logicalId(stack.functions.byName.get(name)!)]!;
        const variables = (fn.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
        expect(variables.REFUNDID_ALLOWED_IPS).toBe(stage === 'prod' ? '34.87.219.187' : '34.116.107.90');
      }
    });

    it('run nodejs22.x on arm64, outside the VPC unless they call providers', () => {
      const { stack, resources } = get();
      for (const definition of FUNCTIONS) {
        const fn = resources[logicalId(stack.functions.byName.get(definition.name)!)]!;
        expect(fn.Properties).toMatchObject({
          Runtime: 'nodejs22.x',
          Architectures: ['arm64'],
          MemorySize: definition.memoryMb,
          Timeout: definition.timeoutSeconds,
        });
        expect(fn.Properties?.VpcConfig !== undefined).toBe(definition.callsOut.length > 0);
      }
      expect(resourcesOfType(resources, 'AWS::Lambda::Function')).toHaveLength(FUNCTIONS.length);
    });

    it("get the runtime's environment under the names lambdas/commons/config.ts reads", () => {
      const { stack, resources } = get();
      const [tableId] = onlyOfType(resources, 'AWS::DynamoDB::Table');
      const [apiId] = onlyOfType(resources, 'AWS::ApiGateway::RestApi');
      for (const definition of FUNCTIONS) {
        const fn = resources[logicalId(stack.functions.byName.get(definition.name)!)]!;
        const variables = (fn.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
        expect(variables).toEqual({
          STAGE: stage,
          TABLE_NAME: { Ref: tableId },
          SECRETS_SOURCE: 'aws',
          SECRETS_PREFIX: `refund-relay/${stage}/`,
          APACE_CLAIM_WINDOW_SECONDS: String(config.apaceClaimWindowSeconds),
          ROUTING_POLICY: config.routingPolicy,
          POWERTOOLS_SERVICE_NAME: 'refund-relay',
          POWERTOOLS_LOG_LEVEL: config.logLevel,
          PUBLIC_BASE_URL: config.customDomain ? `https://${config.customDomain.domainName}` : expect.anything(),
          // Functions that call out get the base URLs of exactly the providers they call.
          ...Object.fromEntries(
            definition.callsOut.flatMap((provider) => PROVIDER_URLS_BY_PROVIDER[provider].map((name) => [name, config.providerUrls[name]])),
          ),
          ...Object.assign({}, ...definition.callsOut.map((provider) => config.providerSettings[provider])),
          ...(definition.dispatchQueue === 'send' && { DISPATCH_QUEUE_URL: { Ref: logicalId(stack.dispatchQueue.queue) } }),
          // Handlers that check their caller's address get the list the API's resource policy enforces.
          ...(definition.sourceAllowlist && { [definition.sourceAllowlist.variable]: config.ipAllowlists[definition.sourceAllowlist.path]!.join(',') }),
        });
        if (!config.customDomain) {
          // The stage URL from the API id: naming the Stage resource would close a dependency cycle.
          expect(variables.PUBLIC_BASE_URL).toEqual({
            'Fn::Join': ['', ['https://', { Ref: apiId }, `.execute-api.${config.region}.`, { Ref: 'AWS::URLSuffix' }, `/${stage}`]],
          });
        }
      }
    });

    it('may read only their own secrets and touch only this table, its due index and their own log group', () => {
      const { stack, resources } = get();
      const [tableId] = onlyOfType(resources, 'AWS::DynamoDB::Table');
      const queueId = logicalId(stack.dispatchQueue.queue);
      const keyIds = resourcesOfType(resources, 'AWS::KMS::Key').map(([id]) => id);
      const secretNameById = new Map(resourcesOfType(resources, 'AWS::SecretsManager::Secret').map(([id, secret]) => [id, String(secret.Properties?.Name)]));
      const secretNamesIn = (resource: unknown): string[] => {
        const text = JSON.stringify(resource);
        const imported = [...text.matchAll(/:secret:([\w/-]+)-\?{6}/g)].map((match) => match[1]!);
        return [...imported, ...[...referencedIds(resource)].flatMap((id) => secretNameById.get(id) ?? [])];
      };

      for (const definition of FUNCTIONS) {
        const fn = stack.functions.byName.get(definition.name)!;
        const roleId = logicalId(fn.role!);
        const [, role] = resourcesOfType(resources, 'AWS::IAM::Role').find(([id]) => id === roleId)!;
        expect(role.Properties?.ManagedPolicyArns).toBeUndefined();
        // Functions that call out also need Lambda's network-interface rights, which cannot be scoped
        // (acknowledged in lib/functions.ts); every other statement must name its resources.
        const networkInterfaces = (statement: Parameters<typeof actionsOf>[0]) => actionsOf(statement).every((action) => action.startsWith('ec2:'));
        const statements = roleStatements(resources, roleId);
        expect(statements.some(networkInterfaces)).toBe(definition.callsOut.length > 0);
        for (const statement of statements.filter((candidate) => !networkInterfaces(candidate))) {
          expect(statement.Effect).toBe('Allow');
          expect(actionsOf(statement).filter((action) => action.includes('*'))).toEqual([]);
          expect(JSON.stringify(statement.Resource)).not.toMatch(/"\*"|\/\*/);
        }

        const secretStatements = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('secretsmanager:')));
        expect(secretStatements.flatMap((statement) => secretNamesIn(statement.Resource)).sort()).toEqual(
          definition.secrets.map((name) => `refund-relay/${stage}/${name}`).sort(),
        );
        for (const statement of secretStatements)
          expect(actionsOf(statement).sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);

        const tableStatements = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('dynamodb:')));
        expect(tableStatements).toHaveLength(definition.table === 'none' ? 0 : 1);
        for (const statement of tableStatements) {
          expect(statement.Resource).toEqual([
            { 'Fn::GetAtt': [tableId, 'Arn'] },
            { 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, `/index/${TABLE.dueIndex.name}`]] },
          ]);
          expect(actionsOf(statement)).not.toContain('dynamodb:DeleteItem');
          expect(actionsOf(statement)).not.toContain('dynamodb:Scan');
        }

        const logStatements = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('logs:')));
        expect(logStatements.map((statement) => statement.Resource)).toEqual([{ 'Fn::GetAtt': [logicalId(fn.logGroup), 'Arn'] }]);

        const keyStatements = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('kms:')));
        expect(keyStatements.map((statement) => statement.Resource)).toEqual(
          definition.table !== 'none' && config.tableEncryption === 'customer-managed' ? keyIds.map((id) => ({ 'Fn::GetAtt': [id, 'Arn'] })) : [],
        );

        // The outbox doorbell: senders may only send, the dispatcher may only consume, and only this queue.
        const queueStatements = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('sqs:')));
        expect(queueStatements).toHaveLength(definition.dispatchQueue ? 1 : 0);
        for (const statement of queueStatements) {
          expect(statement.Resource).toEqual({ 'Fn::GetAtt': [queueId, 'Arn'] });
          expect(actionsOf(statement).includes('sqs:SendMessage')).toBe(definition.dispatchQueue === 'send');
          expect(actionsOf(statement).includes('sqs:ReceiveMessage')).toBe(definition.dispatchQueue === 'consume');
        }
        const networkStatements = statements.filter(networkInterfaces);
        expect(statements).toHaveLength(
          secretStatements.length + tableStatements.length + logStatements.length + keyStatements.length + queueStatements.length + networkStatements.length,
        );
      }
    });
  });

  it(
    config.providerSecrets === 'create' ? 'creates one secret per provider under refund-relay/<stage>/' : 'imports the provider secrets it was told exist',
    () => {
      const secrets = resourcesOfType(get().resources, 'AWS::SecretsManager::Secret');
      const expected = config.providerSecrets === 'create' ? SECRET_NAMES.map((name) => `refund-relay/${stage}/${name}`).sort() : [];
      expect(secrets.map(([, secret]) => secret.Properties?.Name).sort()).toEqual(expected);
    },
  );

  it('rings the dispatch doorbell through an encrypted, TLS-only queue that dead-letters after five receives', () => {
    const { template, resources } = get();
    const queues = resourcesOfType(resources, 'AWS::SQS::Queue');
    const dlqIds = queues.filter(([, queue]) => queue.Properties?.RedrivePolicy === undefined).map(([id]) => id);
    expect(dlqIds).toHaveLength(1);
    const [dlqId] = dlqIds;
    template.hasResourceProperties('AWS::SQS::Queue', { RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 } });
    for (const [, queue] of queues) expect(queue.Properties?.SqsManagedSseEnabled).toBe(true);
    for (const [, policy] of resourcesOfType(resources, 'AWS::SQS::QueuePolicy')) {
      expect(policy.Properties?.PolicyDocument).toMatchObject({ Statement: [{ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }] });
    }
    expect(resourcesOfType(resources, 'AWS::SQS::QueuePolicy')).toHaveLength(2);
  });

  it('alarms on dead letters, each function, API 5xx rate, manual review and poller lag, all to the e-mailed topic', () => {
    const { template, resources } = get();
    const [topicId] = onlyOfType(resources, 'AWS::SNS::Topic');
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: config.alarmEmail, TopicArn: { Ref: topicId } });
    const alarms = resourcesOfType(resources, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties!);
    expect(alarms).toHaveLength(1 + FUNCTIONS.length + 3);
    for (const alarm of alarms) {
      expect(alarm).toMatchObject({ AlarmActions: [{ Ref: topicId }], TreatMissingData: 'notBreaching' });
    }
    const named = (metricName: string) => alarms.filter((alarm) => alarm.MetricName === metricName);
    expect(named('ApproximateNumberOfMessagesVisible')).toHaveLength(1);
    expect(named('Errors')).toHaveLength(FUNCTIONS.length);
    for (const metricName of [CUSTOM_METRICS.refundsInManualReview, CUSTOM_METRICS.pollerLagSeconds]) {
      const [alarm, ...others] = named(metricName);
      expect(others).toEqual([]);
      expect(alarm?.Namespace).toBe('RefundRelay');
      // An alarm sees a metric only when it names all of its dimensions, and no others.
      expect(alarm?.Dimensions).toEqual([
        { Name: 'service', Value: 'refund-relay' },
        { Name: 'stage', Value: stage },
      ]);
    }
    expect(alarms.filter((alarm) => JSON.stringify(alarm.Metrics ?? '').includes('5XXError'))).toEqual([
      expect.objectContaining({ Threshold: config.alarmThresholds.api5xxPercent }),
    ]);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('has no unacknowledged cdk-nag AwsSolutions finding', () => {
    const report = new AwsSolutionsChecks().validateScope(get().stack);
    expect(report.violations).toEqual([]);
    expect(report.success).toBe(true);
  });
});

describe('the inbound API', () => {
  // aws-cdk hashes the RestApi's properties, policy included, into the deployment's logical id.
  it('redeploys when an allowlist changes, since API Gateway applies a resource policy only with a new deployment', () => {
    const deploymentIds = (stage: SynthesizedStage) => resourcesOfType(stage.resources, 'AWS::ApiGateway::Deployment').map(([id]) => id);
    const moved = synthesizeStage({ ...STAGES.dev, ipAllowlists: { ...STAGES.dev.ipAllowlists, '/refundid/order': ['34.87.219.187'] } });
    expect(deploymentIds(moved)).toHaveLength(1);
    expect(deploymentIds(moved)).not.toEqual(deploymentIds(synthesized.get('dev')!));
  });
});
