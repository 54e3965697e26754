import { CfnOutput, Fn, Stack } from 'aws-cdk-lib';
import { EventBus } from 'aws-cdk-lib/aws-events';
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
import { StateTable, TABLE_ITEM_ACTIONS } from './state-table';
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
      // Stack tags: CloudFormation puts them on every resource it creates.
      tags: { project: 'refund-relay', stage: config.stage },
    });
    const routes = props.routes ?? ROUTES;

    const state = new StateTable(this, 'State', {
      encryption: config.tableEncryption,
      deletionProtection: config.tableDeletionProtection,
      removalPolicy: config.removalPolicy,
    });
    const dispatch = new DispatchQueue(this, 'Dispatch');
    this.dispatchQueue = dispatch;
    const secrets = new ProviderSecrets(this, 'Secrets', {
      stage: config.stage,
      source: config.providerSecrets,
      ...(config.providerSecretsKeyArn && { keyArn: config.providerSecretsKeyArn }),
      removalPolicy: config.removalPolicy,
    });
    const egress = new StaticEgress(this, 'Egress', {
      egress: config.egress,
      logRetention: config.logRetention,
      removalPolicy: config.removalPolicy,
      endpointAccess: {
        dynamoDb: { resources: [state.table.tableArn, state.dueIndexArn, state.lookupIndexArn], actions: TABLE_ITEM_ACTIONS },
        secretsArnPattern: secrets.arnPattern(),
        dispatchQueueArn: dispatch.queue.queueArn,
      },
    });
    // Offers reach customers through the retailer's own messaging: it subscribes to this bus (docs/design.md §2.6).
    const offerEventBus =
      config.providerSettings.apace?.APACE_OFFER_DELIVERY === 'event'
        ? new EventBus(this, 'OfferEvents', { eventBusName: `refund-relay-${config.stage}-offers`, description: 'Apace offers to deliver to customers' })
        : undefined;
    this.functions = new Functions(this, 'Functions', {
      definitions: props.functions ?? FUNCTIONS,
      config,
      table: state,
      secrets,
      dispatchQueue: dispatch,
      egress,
      ...(offerEventBus && { offerEventBus }),
    });
    if (offerEventBus)
      new CfnOutput(this, 'OfferEventBus', {
        value: offerEventBus.eventBusName,
        description: 'EventBridge bus of Apace offer events (detail-type ApaceOfferCreated)',
      });
    const inbound = new InboundApi(this, 'Inbound', { config, routes, functions: this.functions.byName });

    for (const fn of this.functions.byName.values()) fn.addEnvironment('PUBLIC_BASE_URL', inbound.publicBaseUrl);

    const alarms = new Alarms(this, 'Alarms', {
      config,
      functions: this.functions.byName,
      deadLetterQueue: dispatch.deadLetterQueue,
      api: inbound.api,
      accessLogs: inbound.accessLogs,
    });
    new Dashboard(this, 'Dashboard', {
      stage: config.stage,
      api: inbound.api,
      functions: this.functions.byName,
      queue: dispatch.queue,
      deadLetterQueue: dispatch.deadLetterQueue,
      alarms: alarms.alarms,
    });

    new CfnOutput(this, 'EgressIps', {
      description: 'Send these to Ap21 and the providers to allowlist: all outbound calls leave from them (read from the allocations by AWS)',
      value: Fn.join(',', [...egress.egressIps]),
    });
    new CfnOutput(this, 'EgressIpAllocationIds', {
      description: 'Pin these in lib/stage-config.ts (egress.elasticIpAllocationIds) to keep the egress IPs across a rebuild',
      value: Fn.join(',', [...egress.allocationIds]),
    });
    // RestApi already outputs its URL; a readable name instead of a hashed one.
    (inbound.api.node.findChild('Endpoint') as CfnOutput).overrideLogicalId('ApiUrl');
    new CfnOutput(this, 'PublicBaseUrl', { description: 'Base of the callback URLs handed to Apace', value: inbound.publicBaseUrl });
    if (config.customDomain && inbound.api.domainName) {
      const { domainName, hostedZone } = config.customDomain;
      const target = inbound.api.domainName.domainNameAliasDomainName;
      const targetZone = inbound.api.domainName.domainNameAliasHostedZoneId;
      new CfnOutput(this, 'CustomDomainTarget', {
        description: `The API's regional name: ${domainName} must point here`,
        value: target,
      });
      new CfnOutput(this, 'CustomDomainTargetHostedZoneId', {
        description: 'Hosted zone of CustomDomainTarget, for a Route 53 alias record',
        value: targetZone,
      });
      new CfnOutput(this, 'CustomDomainDnsRecord', {
        description: hostedZone
          ? `Created by this stack in hosted zone ${hostedZone.name} (${hostedZone.id})`
          : `Create this record where ${domainName} is hosted; callback URLs do not resolve until it exists`,
        value: hostedZone
          ? Fn.join('', [`${domainName} A (alias) -> `, target, ' (created by this stack)'])
          : Fn.join('', [`${domainName} CNAME `, target, ' (or in Route 53: an A alias record to it, hosted zone ', targetZone, ')']),
      });
    }
    new CfnOutput(this, 'TableName', { value: state.table.tableName });
    new CfnOutput(this, 'DispatchQueueUrl', { value: dispatch.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: dispatch.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'SecretsPrefix', { description: 'One JSON secret per provider under this prefix', value: secretsPrefix(config.stage) });
    new CfnOutput(this, 'AlarmTopicArn', { value: alarms.topic.topicArn });
  }
}
