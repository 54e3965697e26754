import { CfnOutput, Fn, Stack, Tags } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { ROUTES, type RouteDefinition } from '../lambdas/routes';
import { Alarms } from './alarms';
import { Dashboard } from './dashboard';
import { DispatchQueue } from './dispatch-queue';
import { FUNCTIONS, type FunctionDefinition } from './function-registry';
import { Functions } from './functions';
import { InboundApi } from './inbound-api';
import { ProviderSecrets, secretsPrefix } from './provider-secrets';
import type { StageConfig } from './stage-config';
import { StateTable } from './state-table';
import { StaticEgress } from './static-egress';

export interface RefundRelayStackProps {
  readonly config: StageConfig;
  readonly functions?: readonly FunctionDefinition[];
  readonly routes?: readonly RouteDefinition[];
}

export const stackName = (stage: string): string => `refund-relay-${stage}`;

/** One stage of refund-relay in its own account and region (docs/design.md §6). */
export class RefundRelayStack extends Stack {
  readonly functions: Functions;
  readonly dispatchQueue: DispatchQueue;

  constructor(scope: Construct, props: RefundRelayStackProps) {
    const { config } = props;
    super(scope, stackName(config.stage), {
      env: { account: config.account, region: config.region },
      description: `refund-relay ${config.stage}: inbound refund callbacks, outbound refunds through static egress IPs`,
      terminationProtection: config.tableDeletionProtection,
    });
    Tags.of(this).add('project', 'refund-relay');
    Tags.of(this).add('stage', config.stage);
    const routes = props.routes ?? ROUTES;

    const egress = new StaticEgress(this, 'Egress', {
      availabilityZones: config.egress.availabilityZones,
      ...(config.egress.elasticIps && { elasticIps: config.egress.elasticIps }),
      logRetention: config.logRetention,
      removalPolicy: config.removalPolicy,
    });
    const state = new StateTable(this, 'State', {
      encryption: config.tableEncryption,
      deletionProtection: config.tableDeletionProtection,
      removalPolicy: config.removalPolicy,
    });
    const dispatch = new DispatchQueue(this, 'Dispatch');
    this.dispatchQueue = dispatch;
    const secrets = new ProviderSecrets(this, 'Secrets', { stage: config.stage, source: config.providerSecrets, removalPolicy: config.removalPolicy });
    this.functions = new Functions(this, 'Functions', {
      definitions: props.functions ?? FUNCTIONS,
      config,
      table: state,
      secrets,
      dispatchQueue: dispatch,
      egress,
    });
    const inbound = new InboundApi(this, 'Inbound', { config, routes, functions: this.functions.byName });

    for (const fn of this.functions.byName.values()) fn.addEnvironment('PUBLIC_BASE_URL', inbound.publicBaseUrl);

    const alarms = new Alarms(this, 'Alarms', { config, functions: this.functions.byName, deadLetterQueue: dispatch.deadLetterQueue, api: inbound.api });
    new Dashboard(this, 'Dashboard', {
      stage: config.stage,
      api: inbound.api,
      functions: this.functions.byName,
      queue: dispatch.queue,
      deadLetterQueue: dispatch.deadLetterQueue,
      alarms: alarms.alarms,
    });

    new CfnOutput(this, 'EgressIps', {
      description: 'Send these to Ap21 and the providers to allowlist: all outbound calls leave from them',
      value: Fn.join(',', [...egress.egressIps]),
    });
    new CfnOutput(this, 'EgressIpAllocationIds', {
      description: 'Pin these in lib/stage-config.ts (egress.elasticIps) to keep the egress IPs across a rebuild',
      value: Fn.join(',', [...egress.allocationIds]),
    });
    // RestApi already outputs its URL; a readable name instead of a hashed one.
    (inbound.api.node.findChild('Endpoint') as CfnOutput).overrideLogicalId('ApiUrl');
    new CfnOutput(this, 'PublicBaseUrl', { description: 'Base of the callback URLs handed to Apace', value: inbound.publicBaseUrl });
    if (config.customDomain && inbound.api.domainName) {
      new CfnOutput(this, 'CustomDomainTarget', {
        description: `Point ${config.customDomain.domainName} here (CNAME or alias record)`,
        value: inbound.api.domainName.domainNameAliasDomainName,
      });
    }
    new CfnOutput(this, 'TableName', { value: state.table.tableName });
    new CfnOutput(this, 'DispatchQueueUrl', { value: dispatch.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: dispatch.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'SecretsPrefix', { description: 'One JSON secret per provider under this prefix', value: secretsPrefix(config.stage) });
    new CfnOutput(this, 'AlarmTopicArn', { value: alarms.topic.topicArn });
  }
}
