import { RemovalPolicy } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SECRET_NAMES, secretNameOf } from '../../lambdas/providers/registry';
import { ROUTES } from '../../lambdas/routes';
import { TABLE } from '../../lambdas/store/table';
import { CUSTOM_METRICS, OUTBOX_OVERDUE_SECONDS } from '../../lib/alarms';
import { FUNCTIONS } from '../../lib/function-registry';
import { API_GATEWAY_TIMEOUT_MS, INBOUND_DEADLINE_MS } from '../../lambdas/commons/http';
import { monthlyCost } from '../../lib/cost-estimate';
import { dispatcherEnvironment } from '../../lib/dispatch-queue';
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
    it('runs the NAT gateways the stage asks for on exactly the Elastic IPs it names, or on retained ones of its own', () => {
      const { resources } = get();
      const natGateways = resourcesOfType(resources, 'AWS::EC2::NatGateway');
      const elasticIps = resourcesOfType(resources, 'AWS::EC2::EIP');
      expect(natGateways).toHaveLength(config.egress.natGateways);
      const allocations = natGateways.map(([, nat]) => nat.Properties?.AllocationId);
      if (config.egress.elasticIpAllocationIds) {
        expect(elasticIps).toEqual([]);
        expect(allocations.sort()).toEqual([...config.egress.elasticIpAllocationIds].sort());
      } else {
        expect(elasticIps).toHaveLength(config.egress.natGateways);
        for (const [, eip] of elasticIps) expect([eip.DeletionPolicy, eip.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
        expect(allocations.map((allocation) => (allocation as { 'Fn::GetAtt': string[] })['Fn::GetAtt']).sort()).toEqual(
          elasticIps.map(([id]) => [id, 'AllocationId']).sort(),
        );
      }
      // Zones without a NAT gateway route through one that has: every private subnet leaves by a pinned address.
      const natRoutes = resourcesOfType(resources, 'AWS::EC2::Route').filter(([, route]) => route.Properties?.NatGatewayId);
      expect(natRoutes).toHaveLength(config.egress.availabilityZones);
    });

    it('outputs the egress IPs as AWS reports them for the allocations, never as typed in the stage', () => {
      const { template, resources } = get();
      const { Outputs } = template.toJSON() as { Outputs: Record<string, { Value: unknown }> };
      const attributes: unknown[] = [];
      JSON.stringify(Outputs.EgressIps?.Value, (key, node: unknown) => {
        if (key === 'Fn::GetAtt') attributes.push(node);
        return node;
      });
      if (config.egress.elasticIpAllocationIds) {
        // One DescribeAddresses call per pinned allocation, made by CloudFormation when the stack deploys.
        const lookups = resourcesOfType(resources, 'Custom::AWS');
        const askedFor = lookups.map(([id, lookup]) => {
          const call = JSON.parse(String(lookup.Properties?.Create)) as { action: string; parameters: { AllocationIds: string[] } };
          expect(call.action).toBe('describeAddresses');
          return [id, call.parameters.AllocationIds];
        });
        expect(askedFor.map(([, ids]) => ids)).toEqual(config.egress.elasticIpAllocationIds.map((id) => [id]));
        expect(attributes).toEqual(askedFor.map(([id]) => [id, 'Addresses.0.PublicIp']));
        expect(JSON.stringify(Outputs.EgressIps)).not.toMatch(/\d+\.\d+\.\d+\.\d+/);
      } else {
        const eipIds = resourcesOfType(resources, 'AWS::EC2::EIP').map(([id]) => id);
        expect(attributes).toEqual(eipIds.map((id) => [id, 'PublicIp']));
      }
    });

    it('reaches DynamoDB through a gateway endpoint, and AWS APIs through the interface endpoints the stage lists, each allowing only this stage', () => {
      const { template, resources, stack } = get();
      const endpoints = resourcesOfType(resources, 'AWS::EC2::VPCEndpoint').map(([, endpoint]) => endpoint.Properties!);
      const [tableId] = onlyOfType(resources, 'AWS::DynamoDB::Table');
      const gateway = endpoints.filter((endpoint) => endpoint.VpcEndpointType === 'Gateway');
      expect(gateway).toHaveLength(1);
      expect(JSON.stringify(gateway[0]!.ServiceName)).toContain('.dynamodb');
      const onlyThisAccount = { StringEquals: { 'aws:PrincipalAccount': config.account } };
      expect((gateway[0]!.PolicyDocument as { Statement: Statement[] }).Statement).toEqual([
        expect.objectContaining({
          Effect: 'Allow',
          Condition: onlyThisAccount,
          Resource: [
            { 'Fn::GetAtt': [tableId, 'Arn'] },
            { 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, `/index/${TABLE.dueIndex.name}`]] },
            { 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, `/index/${TABLE.lookupIndex.name}`]] },
          ],
        }),
      ]);
      const interfaces = endpoints.filter((endpoint) => endpoint.VpcEndpointType === 'Interface');
      expect(interfaces.map((endpoint) => endpoint.ServiceName).sort()).toEqual(
        config.egress.interfaceEndpoints.map((service) => `com.amazonaws.${config.region}.${service}`).sort(),
      );
      for (const endpoint of interfaces) {
        expect(endpoint.PrivateDnsEnabled).toBe(true);
        const [statement, ...others] = (endpoint.PolicyDocument as { Statement: Statement[] }).Statement;
        expect(others).toEqual([]);
        expect(statement!.Condition).toEqual(onlyThisAccount);
        if (String(endpoint.ServiceName).endsWith('.sqs')) {
          expect(statement).toMatchObject({ Action: 'sqs:SendMessage', Resource: { 'Fn::GetAtt': [logicalId(stack.dispatchQueue.queue), 'Arn'] } });
        } else {
          expect(actionsOf(statement!).sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
          expect(statement!.Resource).toBe(`arn:aws:secretsmanager:${config.region}:${config.account}:secret:refund-relay/${stage}/*`);
        }
      }
      template.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL' });
      template.resourceCountIs('AWS::EC2::Subnet', 2 * config.egress.availabilityZones);
    });
  });

  describe('state table', () => {
    it('is the layout of lambdas/store/table.ts: on demand, point-in-time recovery, TTL, the keys-only due and lookup indexes', () => {
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
          {
            IndexName: TABLE.lookupIndex.name,
            KeySchema: [{ AttributeName: TABLE.lookupIndex.partitionKey, KeyType: 'HASH' }],
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

    it('passes every body as raw bytes (binary */*), traces requests and logs access without query strings', () => {
      const { template } = get();
      template.hasResourceProperties('AWS::ApiGateway::RestApi', { BinaryMediaTypes: ['*/*'] });
      template.hasResourceProperties('AWS::ApiGateway::Stage', {
        AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.not(Match.stringLikeRegexp('querystring|\\$context\\.path')) },
        MethodSettings: [
          Match.objectLike({ ThrottlingRateLimit: config.apiThrottle.rateLimit, ThrottlingBurstLimit: config.apiThrottle.burstLimit, DataTraceEnabled: false }),
        ],
        TracingEnabled: true,
      });
    });

    it('owns the execution log group API Gateway would otherwise create forever, with the stage retention, before the stage exists', () => {
      const { resources } = get();
      const [apiId] = onlyOfType(resources, 'AWS::ApiGateway::RestApi');
      const [stageId, apiStage] = onlyOfType(resources, 'AWS::ApiGateway::Stage');
      const executionLogs = resourcesOfType(resources, 'AWS::Logs::LogGroup').filter(([, group]) =>
        JSON.stringify(group.Properties?.LogGroupName ?? '').includes('API-Gateway-Execution-Logs_'),
      );
      expect(executionLogs).toHaveLength(1);
      const [logsId, logs] = executionLogs[0]!;
      expect(logs.Properties?.LogGroupName).toEqual({ 'Fn::Join': ['', ['API-Gateway-Execution-Logs_', { Ref: apiId }, `/${stage}`]] });
      expect(logs.Properties?.RetentionInDays).toBe(config.logRetention);
      expect([apiStage.DependsOn].flat()).toContain(logsId);
      expect(stageId).toBeDefined();
    });

    it("answers refused sources (403), throttling (429) and unknown routes (404) itself in the handlers' error shape", () => {
      const responses = resourcesOfType(get().resources, 'AWS::ApiGateway::GatewayResponse').map(([, response]) => response.Properties!);
      const byType: Record<string, Record<string, unknown>> = Object.fromEntries(responses.map((response) => [String(response.ResponseType), response]));
      expect(Object.keys(byType).sort()).toEqual(['ACCESS_DENIED', 'MISSING_AUTHENTICATION_TOKEN', 'THROTTLED']);
      const answer = (type: string) => {
        const response = byType[type]!;
        const body = JSON.parse((response.ResponseTemplates as Record<string, string>)['application/json']!) as { error: { code: string } };
        return [
          String(response.StatusCode),
          body.error.code,
          (response.ResponseParameters as Record<string, string>)['gatewayresponse.header.x-correlation-id'],
        ];
      };
      expect(answer('ACCESS_DENIED')).toEqual(['403', 'forbidden_source', 'method.request.header.x-correlation-id']);
      expect(answer('THROTTLED')).toEqual(['429', 'throttled', 'method.request.header.x-correlation-id']);
      expect(answer('MISSING_AUTHENTICATION_TOKEN')).toEqual(['404', 'route_not_found', 'method.request.header.x-correlation-id']);
    });

    it('masks card numbers and e-mail addresses in every log group that can hold request or provider text', () => {
      const { resources, stack } = get();
      const groups = resourcesOfType(resources, 'AWS::Logs::LogGroup');
      const protectedIds = groups
        .filter(([, group]) => JSON.stringify(group.Properties?.DataProtectionPolicy ?? '').includes('CreditCardNumber'))
        .map(([id]) => id);
      for (const [id, group] of groups.filter(([candidate]) => protectedIds.includes(candidate))) {
        const identifiers = JSON.stringify(group.Properties?.DataProtectionPolicy);
        expect([id, identifiers.includes('data-identifier/CreditCardNumber'), identifiers.includes('data-identifier/EmailAddress')]).toEqual([id, true, true]);
      }
      const expected = [...stack.functions.byName.values()].map((fn) => logicalId(fn.logGroup));
      expect(protectedIds).toEqual(expect.arrayContaining(expected));
      // Function logs, access logs and execution logs; the flow logs and the deploy-time lookup hold no request text.
      expect(protectedIds).toHaveLength(expected.length + 2);
    });

    it('denies every source IP but the allowlisted ones on each allowlisted path, and leaves other paths open', () => {
      const [, api] = onlyOfType(get().resources, 'AWS::ApiGateway::RestApi');
      const statements = (api.Properties?.Policy as { Statement: Statement[] }).Statement;
      const denies = statements.filter((statement) => statement.Effect === 'Deny');
      expect(statements.filter((statement) => statement.Effect === 'Allow')).toEqual([
        expect.objectContaining({ Action: 'execute-api:Invoke', Resource: 'execute-api:/*/*/*' }),
      ]);
      // Paths with the same allowlist share one statement (the aws-iam:minimizePolicies feature flag).
      const deniedOn = (path: string) => denies.filter((deny) => [deny.Resource].flat().includes(executeApiResource(path)));
      for (const [path, addresses] of Object.entries(config.ipAllowlists)) {
        expect(deniedOn(path).map((deny) => [deny.Action, deny.Condition])).toEqual([['execute-api:Invoke', { NotIpAddress: { 'aws:SourceIp': addresses } }]]);
      }
      expect(denies.flatMap((deny) => [deny.Resource].flat()).sort()).toEqual(Object.keys(config.ipAllowlists).map(executeApiResource).sort());
      for (const route of ROUTES) {
        const [denied] = deniedOn(route.path);
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
        template.resourceCountIs('AWS::Route53::RecordSet', 0);
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

    it('run nodejs22.x on arm64 with active tracing and JSON logs at the stage level, outside the VPC unless they call providers', () => {
      const { stack, resources } = get();
      for (const definition of FUNCTIONS) {
        const fn = stack.functions.byName.get(definition.name)!;
        expect(resources[logicalId(fn)]!.Properties).toMatchObject({
          Runtime: 'nodejs22.x',
          Architectures: ['arm64'],
          MemorySize: definition.memoryMb,
          Timeout: definition.timeoutSeconds,
          TracingConfig: { Mode: 'Active' },
          LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: config.logLevel, SystemLogLevel: 'INFO', LogGroup: { Ref: logicalId(fn.logGroup) } },
        });
        expect(resources[logicalId(fn)]!.Properties?.VpcConfig !== undefined).toBe(definition.callsOut.length > 0);
        expect(resources[logicalId(fn)]!.Properties?.ReservedConcurrentExecutions).toBeUndefined();
      }
      const ours = resourcesOfType(resources, 'AWS::Lambda::Function').filter(([, fn]) =>
        String(fn.Properties?.Description).startsWith(`refund-relay ${stage} `),
      );
      expect(ours).toHaveLength(FUNCTIONS.length);
    });

    it('answer API Gateway within its 29 s: every API function times out before it, and its handler deadline comes sooner still', () => {
      const { stack, resources } = get();
      expect(INBOUND_DEADLINE_MS).toBeLessThan(API_GATEWAY_TIMEOUT_MS);
      for (const route of ROUTES) {
        const timeout = resources[logicalId(stack.functions.byName.get(route.fn)!)]!.Properties?.Timeout as number;
        expect([route.fn, timeout * 1000 <= API_GATEWAY_TIMEOUT_MS]).toEqual([route.fn, true]);
      }
    });

    it('run scheduled functions without retries or late deliveries: the next run is a minute away', () => {
      const { stack, resources } = get();
      for (const definition of FUNCTIONS.filter((candidate) => candidate.schedule)) {
        const fnId = logicalId(stack.functions.byName.get(definition.name)!);
        const rules = resourcesOfType(resources, 'AWS::Events::Rule').filter(([, rule]) => referencedIds(rule.Properties?.Targets).has(fnId));
        expect(rules).toHaveLength(1);
        expect((rules[0]![1].Properties?.Targets as { RetryPolicy: unknown }[])[0]!.RetryPolicy).toEqual({
          MaximumRetryAttempts: 0,
          MaximumEventAgeInSeconds: 60,
        });
        const invokeConfigs = resourcesOfType(resources, 'AWS::Lambda::EventInvokeConfig').filter(([, invoke]) =>
          referencedIds(invoke.Properties?.FunctionName).has(fnId),
        );
        expect(invokeConfigs.map(([, invoke]) => [invoke.Properties?.MaximumRetryAttempts, invoke.Properties?.MaximumEventAgeInSeconds])).toEqual([[0, 60]]);
      }
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
          EXCHANGE_POLICY: config.exchangePolicy,
          POWERTOOLS_SERVICE_NAME: 'refund-relay',
          POWERTOOLS_LOG_LEVEL: config.logLevel,
          PUBLIC_BASE_URL: config.customDomain ? `https://${config.customDomain.domainName}` : expect.anything(),
          // Functions that call out get the base URLs of exactly the providers they call.
          ...Object.fromEntries(
            definition.callsOut.flatMap((provider) => PROVIDER_URLS_BY_PROVIDER[provider].map((name) => [name, config.providerUrls[name]])),
          ),
          // Provider settings go to every function that calls, authenticates or reads the settings of that provider.
          ...Object.assign(
            {},
            ...[...definition.callsOut, ...definition.secrets, ...(definition.settings ?? [])].map((provider) => config.providerSettings[provider]),
          ),
          ...(definition.dispatchQueue === 'send' && { DISPATCH_QUEUE_URL: { Ref: logicalId(stack.dispatchQueue.queue) } }),
          // The dispatcher's time budget (lib/dispatch-queue.ts).
          ...(definition.dispatchQueue === 'consume' && dispatcherEnvironment()),
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
        // Functions that call out also need Lambda's network-interface rights, and every function
        // X-Ray's write rights, neither of which can be scoped (acknowledged in lib/functions.ts);
        // every other statement must name its resources.
        const networkInterfaces = (statement: Parameters<typeof actionsOf>[0]) => actionsOf(statement).every((action) => action.startsWith('ec2:'));
        const tracing = (statement: Parameters<typeof actionsOf>[0]) => actionsOf(statement).every((action) => action.startsWith('xray:'));
        const statements = roleStatements(resources, roleId);
        expect(statements.some(networkInterfaces)).toBe(definition.callsOut.length > 0);
        expect(statements.filter(tracing).map((statement) => [actionsOf(statement).sort(), statement.Resource])).toEqual([
          [['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], '*'],
        ]);
        for (const statement of statements.filter((candidate) => !networkInterfaces(candidate) && !tracing(candidate))) {
          expect(statement.Effect).toBe('Allow');
          expect(actionsOf(statement).filter((action) => action.includes('*'))).toEqual([]);
          expect(JSON.stringify(statement.Resource)).not.toMatch(/"\*"|\/\*/);
        }

        const secretStatements = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('secretsmanager:')));
        expect(secretStatements.flatMap((statement) => secretNamesIn(statement.Resource)).sort()).toEqual(
          definition.secrets.map((id) => `refund-relay/${stage}/${secretNameOf(id)}`).sort(),
        );
        for (const statement of secretStatements)
          expect(actionsOf(statement).sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);

        const tableStatements = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('dynamodb:')));
        expect(tableStatements).toHaveLength(definition.table === 'none' ? 0 : 1);
        for (const statement of tableStatements) {
          expect(statement.Resource).toEqual([
            { 'Fn::GetAtt': [tableId, 'Arn'] },
            { 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, `/index/${TABLE.dueIndex.name}`]] },
            { 'Fn::Join': ['', [{ 'Fn::GetAtt': [tableId, 'Arn'] }, `/index/${TABLE.lookupIndex.name}`]] },
          ]);
          // Nothing that deletes (BatchWriteItem can) or scans: state only moves forward.
          for (const action of ['dynamodb:DeleteItem', 'dynamodb:BatchWriteItem', 'dynamodb:Scan']) expect(actionsOf(statement)).not.toContain(action);
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
          secretStatements.length +
            tableStatements.length +
            logStatements.length +
            keyStatements.length +
            queueStatements.length +
            networkStatements.length +
            1,
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

  it('alarms on dead letters, each function, API 5xx rate, manual review, isolated Ap21 orders, poller lag, waiting inbox records, unconfirmed Apace payouts, returns not received, refunds paid twice and allowlisted-route 4xx, all to the e-mailed topic', () => {
    const { template, resources } = get();
    const [topicId] = onlyOfType(resources, 'AWS::SNS::Topic');
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: config.alarmEmail, TopicArn: { Ref: topicId } });
    const alarms = resourcesOfType(resources, 'AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties!);
    // The wait table's three (docs/design.md §2.5) beside the rest: test/liveness/wait-table.test.ts checks each.
    expect(alarms).toHaveLength(1 + FUNCTIONS.length + 11 + 3);
    for (const alarm of alarms) expect(alarm).toMatchObject({ AlarmActions: [{ Ref: topicId }] });
    const named = (metricName: string) => alarms.filter((alarm) => alarm.MetricName === metricName);
    expect(named('ApproximateNumberOfMessagesVisible')).toHaveLength(1);
    expect(named('Errors')).toHaveLength(FUNCTIONS.length);
    for (const metricName of [
      CUSTOM_METRICS.refundsInManualReview,
      CUSTOM_METRICS.ap21OrdersIsolated,
      CUSTOM_METRICS.pollerLagSeconds,
      CUSTOM_METRICS.inboxRecordsWaiting,
      CUSTOM_METRICS.apacePayoutsUnconfirmed,
      CUSTOM_METRICS.apaceOffersUndelivered,
      CUSTOM_METRICS.returnsNotReceived,
      CUSTOM_METRICS.refundsPaidTwice,
      CUSTOM_METRICS.reversalsInFlightSettledElsewhere,
      CUSTOM_METRICS.outboxOverdueSeconds,
      CUSTOM_METRICS.ap21IsolationsOpen,
      CUSTOM_METRICS.refundidResultsOverdue,
    ]) {
      const [alarm, ...others] = named(metricName);
      expect(others).toEqual([]);
      expect(alarm?.Namespace).toBe('RefundRelay');
      // An alarm sees a metric only when it names all of its dimensions, and no others.
      expect(alarm?.Dimensions).toEqual([
        { Name: 'service', Value: 'refund-relay' },
        { Name: 'stage', Value: stage },
      ]);
    }
    // Silence is an alarm: the poller and the sweeper report on every run, so ten minutes without a report breach.
    const silenceBreaches = alarms.filter((alarm) => alarm.TreatMissingData === 'breaching');
    expect(silenceBreaches).toEqual([
      expect.objectContaining({
        MetricName: CUSTOM_METRICS.pollerLagSeconds,
        Period: 300,
        EvaluationPeriods: 2,
        Threshold: config.alarmThresholds.pollerLagSeconds,
      }),
      expect.objectContaining({ MetricName: CUSTOM_METRICS.outboxOverdueSeconds, Period: 300, EvaluationPeriods: 2, Threshold: OUTBOX_OVERDUE_SECONDS }),
    ]);
    expect(alarms.filter((alarm) => alarm.TreatMissingData !== 'notBreaching')).toHaveLength(2);

    // The 5xx rate counts only once enough errors happened: one error in a quiet hour is not 100%.
    const [api5xx, ...more5xx] = alarms.filter((alarm) => JSON.stringify(alarm.Metrics ?? '').includes('5XXError'));
    expect(more5xx).toEqual([]);
    expect(api5xx).toMatchObject({ Threshold: config.alarmThresholds.api5xxPercent });
    const expression = (api5xx!.Metrics as { Expression?: string }[]).find((metric) => metric.Expression)!.Expression;
    expect(expression).toBe(`IF(errors >= ${config.alarmThresholds.api5xxMinimumCount}, 100 * errors / requests, 0)`);

    // 403s from the resource policy never reach a function: they are counted from the access logs.
    const [filterId, filter] = onlyOfType(resources, 'AWS::Logs::MetricFilter');
    const [accessLogsId] = resourcesOfType(resources, 'AWS::Logs::LogGroup').find(([id]) => id.startsWith('InboundAccessLogs'))!;
    expect(filter.Properties).toMatchObject({
      LogGroupName: { Ref: accessLogsId },
      MetricTransformations: [
        { MetricNamespace: 'RefundRelay', MetricName: CUSTOM_METRICS.allowlistedRoute4xx, MetricValue: '1', Dimensions: [{ Key: 'stage', Value: '$.stage' }] },
      ],
    });
    for (const path of Object.keys(config.ipAllowlists)) expect(String(filter.Properties?.FilterPattern)).toContain(`$.resourcePath = "${path}"`);
    expect(named(CUSTOM_METRICS.allowlistedRoute4xx)).toEqual([
      expect.objectContaining({ Dimensions: [{ Name: 'stage', Value: stage }], Statistic: 'Sum', Threshold: config.alarmThresholds.allowlistedRoute4xx }),
    ]);
    expect(filterId).toBeDefined();
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('costs what lib/cost-estimate.ts says: its counts are what the template deploys', () => {
    const { resources } = get();
    const count = (item: string) => monthlyCost(config).lines.find((line) => line.item.startsWith(item))?.count ?? 0;
    expect(count('NAT gateways')).toBe(resourcesOfType(resources, 'AWS::EC2::NatGateway').length);
    expect(count('interface endpoints')).toBe(
      resourcesOfType(resources, 'AWS::EC2::VPCEndpoint').filter(([, endpoint]) => endpoint.Properties?.VpcEndpointType === 'Interface').length *
        config.egress.availabilityZones,
    );
    expect(count('CloudWatch alarms')).toBe(resourcesOfType(resources, 'AWS::CloudWatch::Alarm').length);
    expect(count('KMS key')).toBe(resourcesOfType(resources, 'AWS::KMS::Key').length);
    expect(count('CloudWatch dashboard')).toBe(resourcesOfType(resources, 'AWS::CloudWatch::Dashboard').length);
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

describe('a production stage whose domain is hosted elsewhere, whose secrets use a customer-managed key, with an SQS endpoint', () => {
  const keyArn = 'arn:aws:kms:ap-southeast-2:333333333333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
  const { customDomain } = STAGES.prod;
  let synthesizedVariant: SynthesizedStage;
  beforeAll(() => {
    synthesizedVariant = synthesizeStage({
      ...STAGES.prod,
      egress: { ...STAGES.prod.egress, interfaceEndpoints: ['secretsmanager', 'sqs'] },
      providerSecretsKeyArn: keyArn,
      customDomain: { domainName: customDomain!.domainName, certificateArn: customDomain!.certificateArn },
    });
  });

  it('sends the dispatch doorbell through an SQS endpoint that allows only sending to this queue, from this account', () => {
    const { resources, stack } = synthesizedVariant;
    const sqs = resourcesOfType(resources, 'AWS::EC2::VPCEndpoint').filter(
      ([, endpoint]) => endpoint.Properties?.ServiceName === 'com.amazonaws.ap-southeast-2.sqs',
    );
    expect(sqs).toHaveLength(1);
    expect((sqs[0]![1].Properties?.PolicyDocument as { Statement: Statement[] }).Statement).toEqual([
      {
        Effect: 'Allow',
        Principal: { AWS: '*' },
        Action: 'sqs:SendMessage',
        Resource: { 'Fn::GetAtt': [logicalId(stack.dispatchQueue.queue), 'Arn'] },
        Condition: { StringEquals: { 'aws:PrincipalAccount': '333333333333' } },
      },
    ]);
  });

  it('creates no DNS record and says in its outputs exactly which record to create', () => {
    const { template } = synthesizedVariant;
    template.resourceCountIs('AWS::Route53::RecordSet', 0);
    const outputs = (template.toJSON() as { Outputs: Record<string, { Value: unknown; Description: string }> }).Outputs;
    const [domainId] = onlyOfType(synthesizedVariant.resources, 'AWS::ApiGateway::DomainName');
    expect(outputs.CustomDomainTarget?.Value).toEqual({ 'Fn::GetAtt': [domainId, 'RegionalDomainName'] });
    expect(outputs.CustomDomainDnsRecord?.Description).toContain('Create this record where refunds.example.com is hosted');
    expect(outputs.CustomDomainDnsRecord?.Value).toEqual({
      'Fn::Join': [
        '',
        [
          'refunds.example.com CNAME ',
          { 'Fn::GetAtt': [domainId, 'RegionalDomainName'] },
          ' (or in Route 53: an A alias record to it, hosted zone ',
          { 'Fn::GetAtt': [domainId, 'RegionalHostedZoneId'] },
          ')',
        ],
      ],
    });
  });

  it("lets each function decrypt its imported secrets with the stage's key, only through Secrets Manager", () => {
    const { stack, resources } = synthesizedVariant;
    for (const definition of FUNCTIONS) {
      const keyStatements = roleStatements(resources, logicalId(stack.functions.byName.get(definition.name)!.role!)).filter(
        (statement) => statement.Resource === keyArn,
      );
      if (definition.secrets.length === 0) expect(keyStatements).toEqual([]);
      else
        expect(keyStatements).toEqual([
          expect.objectContaining({
            Action: 'kms:Decrypt',
            Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.ap-southeast-2.amazonaws.com' } },
          }),
        ]);
    }
  });
});

describe("the prod stage's custom domain", () => {
  it('is an alias record in the hosted zone the stage names, pointing at the API', () => {
    const { resources } = synthesized.get('prod')!;
    const [, record] = onlyOfType(resources, 'AWS::Route53::RecordSet');
    const [domainId] = onlyOfType(resources, 'AWS::ApiGateway::DomainName');
    expect(record.Properties).toMatchObject({
      HostedZoneId: STAGES.prod.customDomain!.hostedZone!.id,
      Name: `${STAGES.prod.customDomain!.domainName}.`,
      Type: 'A',
      AliasTarget: { DNSName: { 'Fn::GetAtt': [domainId, 'RegionalDomainName'] }, HostedZoneId: { 'Fn::GetAtt': [domainId, 'RegionalHostedZoneId'] } },
    });
  });
});
