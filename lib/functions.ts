import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Validations } from 'aws-cdk-lib';
import { SubnetType } from 'aws-cdk-lib/aws-ec2';
import { Rule, Schedule, type IEventBus } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Policy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { ApplicationLogLevel, Architecture, Function as LambdaFn, LoggingFormat, Runtime, SystemLogLevel, Tracing } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct } from 'constructs';
import { FUNCTIONS_DIR, LAMBDA_HANDLER, functionCode } from './bundling';
import { DISPATCH_BUDGET, MAX_CONSUMER_TIMEOUT, dispatcherEnvironment, type DispatchQueue } from './dispatch-queue';
import type { FunctionDefinition } from './function-registry';
import { protectedLogGroup } from './log-protection';
import { secretsPrefix, type ProviderSecrets } from './provider-secrets';
import { secretNameOf } from '../lambdas/providers/registry';
import { PROVIDER_URLS_BY_PROVIDER, type StageConfig } from './stage-config';
import type { StateTable } from './state-table';
import type { StaticEgress } from './static-egress';

/** How long EventBridge may keep trying to deliver a scheduled run (its minimum): the next run is a minute away. */
export const SCHEDULED_EVENT_MAX_AGE = Duration.minutes(1);

/** The Powertools service name, as locally (local/environment.ts). */
export const SERVICE_NAME = 'refund-relay';

export class FunctionRegistryError extends Error {
  override readonly name = 'FunctionRegistryError';
}

export interface FunctionsProps {
  readonly definitions: readonly FunctionDefinition[];
  readonly config: StageConfig;
  readonly table: StateTable;
  readonly secrets: ProviderSecrets;
  readonly dispatchQueue: DispatchQueue;
  readonly egress: StaticEgress;
  /** The bus of Apace offer events, when the stage delivers offers by event (`APACE_OFFER_DELIVERY=event`). */
  readonly offerEventBus?: IEventBus;
}

// What AWSLambdaVPCAccessExecutionRole grants for the function's network interfaces, minus its log rights.
const NETWORK_INTERFACE_ACTIONS = [
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:DeleteNetworkInterface',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
];

const constructId = (name: string) => name.replace(/(^|-)([a-z0-9])/g, (_, _dash: string, letter: string) => letter.toUpperCase());

/**
 * One Lambda per registry entry, each with its own role (its own secrets, this table, its own log
 * group, nothing else). Bundled by the local esbuild: the AWS SDK goes into the bundle so the
 * versions we test are the versions that run, and no Docker is needed.
 */
export class Functions extends Construct {
  readonly byName: ReadonlyMap<string, LambdaFn>;

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const names = props.definitions.map((definition) => definition.name);
    const repeated = names.filter((name, index) => names.indexOf(name) !== index);
    if (repeated.length > 0) throw new FunctionRegistryError(`function registry repeats ${repeated.join(', ')}`);
    this.byName = new Map(props.definitions.map((definition) => [definition.name, this.createFunction(definition, props)]));
  }

  private createFunction(definition: FunctionDefinition, props: FunctionsProps): LambdaFn {
    const { config } = props;
    const entry = join(FUNCTIONS_DIR, `${definition.name}.ts`);
    if (!existsSync(entry)) throw new FunctionRegistryError(`function ${definition.name} has no entry file lambdas/functions/${definition.name}.ts`);
    const id = constructId(definition.name);
    const callsOut = definition.callsOut.length > 0;

    const logGroup = protectedLogGroup(this, `${id}Logs`, { retention: config.logRetention, removalPolicy: config.removalPolicy });
    const role = new Role(this, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `refund-relay ${config.stage} ${definition.name}`,
    });
    logGroup.grantWrite(role);
    props.secrets.grantRead(role, definition.secrets.map(secretNameOf));
    if (definition.table !== 'none') props.table.grantData(role, definition.table);

    const fn = new LambdaFn(this, id, {
      code: functionCode(definition.name),
      handler: LAMBDA_HANDLER,
      description: `refund-relay ${config.stage} ${definition.name}`,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: definition.memoryMb,
      timeout: Duration.seconds(definition.timeoutSeconds),
      role,
      logGroup,
      // Lambda's own lines (START, REPORT) as JSON beside the Powertools logger's; its level
      // filter is the stage's, so both agree on what is kept.
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel[config.logLevel],
      systemLogLevelV2: SystemLogLevel.INFO,
      // X-Ray traces from Lambda itself: no SDK in the bundle, no code.
      tracing: Tracing.ACTIVE,
      environment: this.environment(definition, props),
      ...(callsOut && {
        vpc: props.egress.vpc,
        vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
        securityGroups: [props.egress.outboundSecurityGroup],
      }),
    });
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'nodejs22.x is the runtime the code is built and tested for (esbuild target node22, @types/node 22); moving to a newer runtime is a deliberate upgrade.',
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.',
    });

    if (callsOut) fn.node.addDependency(this.networkInterfacePolicy(id, role));
    this.wireDispatchQueue(definition, fn, props.dispatchQueue);
    if (definition.offerEvents === 'publish') props.offerEventBus?.grantPutEventsTo(fn);
    if (definition.schedule) {
      // A failed or late run is not retried: the next scheduled one does the same work afresh,
      // and retries would pile up runs behind a stuck dependency.
      new Rule(this, `${id}Schedule`, {
        description: `refund-relay ${config.stage}: runs ${definition.name}`,
        schedule: Schedule.expression(definition.schedule),
        targets: [new LambdaFunction(fn, { retryAttempts: 0, maxEventAge: SCHEDULED_EVENT_MAX_AGE })],
      });
      fn.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: SCHEDULED_EVENT_MAX_AGE });
    }
    return fn;
  }

  /** The runtime's variables (lambdas/commons/config.ts), under the names `npm start` uses. */
  private environment(definition: FunctionDefinition, { config, table, dispatchQueue, offerEventBus }: FunctionsProps): Record<string, string> {
    const environment: Record<string, string> = {
      STAGE: config.stage,
      TABLE_NAME: table.table.tableName,
      SECRETS_SOURCE: 'aws',
      SECRETS_PREFIX: secretsPrefix(config.stage),
      APACE_CLAIM_WINDOW_SECONDS: String(config.apaceClaimWindowSeconds),
      ROUTING_POLICY: config.routingPolicy,
      EXCHANGE_POLICY: config.exchangePolicy,
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_LOG_LEVEL: config.logLevel,
    };
    for (const provider of definition.callsOut) {
      for (const variable of PROVIDER_URLS_BY_PROVIDER[provider]) environment[variable] = config.providerUrls[variable];
    }
    // Settings go to every function that deals with the provider, e.g. Apace's currency and follow-up
    // time also to the notification handler that books Apace's `pending`.
    for (const provider of new Set([...definition.callsOut, ...definition.secrets, ...(definition.settings ?? [])]))
      Object.assign(environment, config.providerSettings[provider]);
    if (definition.offerEvents === 'publish' && offerEventBus) environment.APACE_OFFER_EVENT_BUS = offerEventBus.eventBusName;
    if (definition.dispatchQueue === 'send') environment.DISPATCH_QUEUE_URL = dispatchQueue.queue.queueUrl;
    if (definition.dispatchQueue === 'consume') Object.assign(environment, dispatcherEnvironment());
    if (definition.sourceAllowlist) {
      const { variable, path } = definition.sourceAllowlist;
      const addresses = config.ipAllowlists[path];
      if (!addresses)
        throw new FunctionRegistryError(
          `function ${definition.name} checks callers against the allowlist of ${path}, which stage ${config.stage} does not list`,
        );
      environment[variable] = addresses.join(',');
    }
    return environment;
  }

  private wireDispatchQueue(definition: FunctionDefinition, fn: LambdaFn, dispatchQueue: DispatchQueue): void {
    if (definition.dispatchQueue === 'send') dispatchQueue.queue.grantSendMessages(fn);
    if (definition.dispatchQueue !== 'consume') return;
    if (definition.timeoutSeconds > MAX_CONSUMER_TIMEOUT.toSeconds()) {
      throw new FunctionRegistryError(
        `function ${definition.name} consumes the dispatch queue, so its timeout must be at most ${MAX_CONSUMER_TIMEOUT.toSeconds()} s (a sixth of the queue's visibility timeout)`,
      );
    }
    fn.addEventSource(
      new SqsEventSource(dispatchQueue.queue, {
        batchSize: DISPATCH_BUDGET.batchSize,
        maxConcurrency: DISPATCH_BUDGET.maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
  }

  /**
   * Lambda creates the function's network interfaces with its role, and checks for these rights
   * when the function is created: a policy of its own, attached before the function exists.
   */
  private networkInterfacePolicy(id: string, role: Role): Policy {
    const policy = new Policy(this, `${id}NetworkInterfaces`, {
      roles: [role],
      statements: [new PolicyStatement({ actions: NETWORK_INTERFACE_ACTIONS, resources: ['*'] })],
    });
    Validations.of(policy).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Lambda VPC networking: ec2:Describe* cannot be scoped to resources, and the network interfaces Lambda creates and deletes do not exist yet; ' +
        'this is the ec2 part of AWSLambdaVPCAccessExecutionRole, kept inline instead of the managed policy.',
    });
    return policy;
  }
}
