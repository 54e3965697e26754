import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createAp21Poller } from '../../lambdas/functions/ap21-runtime';
import { createApaceOffers, createReversalConnectors } from '../../lambdas/functions/dispatch-runtime';
import { createRuntime } from '../../lambdas/functions/runtime';
import type { PaymentProvider } from '../../lambdas/domain/order';
import { loadApaceOfferDays } from '../../lambdas/providers/apace/config';
import type { ReversalConnector } from '../../lambdas/providers/reversal';
import type { Ap21Poller } from '../../lambdas/services/ap21-poller';
import type { ApaceOffers } from '../../lambdas/services/apace-offers';
import { SqsDoorbell } from '../../lambdas/services/sqs-doorbell';
import type { Doorbell } from '../../lambdas/services/sweeper';
import type { OrderStore } from '../../lambdas/store/order-store';
import { secretsPrefix } from '../../lib/provider-secrets';
import { stackName } from '../../lib/refund-relay-stack';
import { STAGE_NAMES, STAGES, type StageConfig, type StageName } from '../../lib/stage-config';
import { applyLocalEnvironment, localSettings } from '../../local/environment';

/** A failure the operator can act on: its message is the whole story, the exit code says how bad. */
export class OpsError extends Error {
  override readonly name = 'OpsError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Where the commands act: the local runtime's dynalite or a deployed stage. */
export interface OpsTarget {
  /** `local` or the stage name, for messages. */
  readonly name: string;
  readonly tableName: string;
  readonly store: OrderStore;
  readonly claimWindowMs: number;
  /** Wakes the dispatcher for an order; absent locally, where the sweeper loop finds due work by itself. */
  readonly doorbell?: Doorbell;
  readonly reversals: Partial<Record<PaymentProvider, ReversalConnector>>;
  readonly apace?: ApaceOffers;
  /** How long the target's Apace offers live (`APACE_OFFER_DAYS`): an offer requested by the operator counts from then. */
  readonly apaceOfferDays?: number;
  /** The Ap21 poller of this target, built when a command needs it (it reads the Ap21 settings). */
  readonly ap21Poller: () => Ap21Poller;
}

/** A stage's CloudFormation outputs (`TableName`, `DispatchQueueUrl`, `EgressIps`, …). */
export type StackOutputsReader = (config: StageConfig) => Promise<Readonly<Record<string, string>>>;

export const readStackOutputs: StackOutputsReader = async (config) => {
  const client = new CloudFormationClient({ region: config.region });
  try {
    const { Stacks } = await client.send(new DescribeStacksCommand({ StackName: stackName(config.stage) }));
    const outputs: Record<string, string> = {};
    for (const output of Stacks?.[0]?.Outputs ?? []) if (output.OutputKey && output.OutputValue !== undefined) outputs[output.OutputKey] = output.OutputValue;
    return outputs;
  } finally {
    client.destroy();
  }
};

export function stageNamed(name: string): StageConfig {
  if (!(STAGE_NAMES as readonly string[]).includes(name)) {
    throw new OpsError(`unknown stage ${JSON.stringify(name)}: the stages are ${STAGE_NAMES.join(', ')} (lib/stage-config.ts)`);
  }
  return STAGES[name as StageName];
}

/**
 * The local runtime as `npm start` runs it: its dynalite (DYNAMODB_ENDPOINT, default port 4567),
 * its table and secrets file, and the provider base URLs exported in this shell, if any.
 */
export function localTarget(env: NodeJS.ProcessEnv = process.env): OpsTarget {
  const localEnv = { ...env };
  applyLocalEnvironment(localSettings(localEnv), localEnv);
  const rt = createRuntime(localEnv);
  const apace = createApaceOffers(rt, localEnv);
  return {
    name: 'local',
    tableName: rt.config.TABLE_NAME,
    store: rt.store,
    claimWindowMs: rt.claimWindowMs,
    reversals: createReversalConnectors(rt, localEnv),
    ...(apace && { apace }),
    apaceOfferDays: loadApaceOfferDays(localEnv),
    ap21Poller: () => createAp21Poller(rt, localEnv),
  };
}

/**
 * A deployed stage, reached with the engineer's own AWS credentials (the default chain): its table
 * and queue from the stack's outputs, its secrets from Secrets Manager, its provider URLs from
 * the stage config. The stage's region applies whatever AWS_REGION says.
 */
export async function stageTarget(stage: string, readOutputs: StackOutputsReader = readStackOutputs, env: NodeJS.ProcessEnv = process.env): Promise<OpsTarget> {
  const config = stageNamed(stage);
  let outputs: Readonly<Record<string, string>>;
  try {
    outputs = await readOutputs(config);
  } catch (error) {
    throw new OpsError(
      `cannot read stack ${stackName(config.stage)} in ${config.region} (${(error as Error).message}); are AWS credentials for account ${config.account} set?`,
    );
  }
  const tableName = outputs.TableName;
  if (!tableName) throw new OpsError(`stack ${stackName(config.stage)} has no TableName output; is the stage deployed?`);
  // The SDK clients behind the store and the secrets read the region from here.
  env.AWS_REGION = config.region;
  const stageEnv: NodeJS.ProcessEnv = {
    ...env,
    ...config.providerUrls,
    ...config.providerSettings.ap21,
    STAGE: config.stage,
    TABLE_NAME: tableName,
    SECRETS_SOURCE: 'aws',
    SECRETS_PREFIX: secretsPrefix(config.stage),
    APACE_CLAIM_WINDOW_SECONDS: String(config.apaceClaimWindowSeconds),
    ROUTING_POLICY: config.routingPolicy,
    // retry-ap21 books returns as the stage's poller does (docs/design.md §2.8).
    EXCHANGE_POLICY: config.exchangePolicy,
  };
  delete stageEnv.DYNAMODB_ENDPOINT;
  const rt = createRuntime(stageEnv);
  const apace = createApaceOffers(rt, stageEnv);
  const queueUrl = outputs.DispatchQueueUrl;
  return {
    name: config.stage,
    tableName,
    store: rt.store,
    claimWindowMs: rt.claimWindowMs,
    ...(queueUrl && { doorbell: new SqsDoorbell(new SQSClient({ region: config.region }), queueUrl) }),
    reversals: createReversalConnectors(rt, stageEnv),
    ...(apace && { apace }),
    apaceOfferDays: loadApaceOfferDays({ ...config.providerSettings.apace }),
    ap21Poller: () => createAp21Poller(rt, stageEnv),
  };
}
