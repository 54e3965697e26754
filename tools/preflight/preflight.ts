import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { monthlyCost, type CostEstimate } from '../../lib/cost-estimate';
import { STAGE_NAMES, STAGES, type StageConfig } from '../../lib/stage-config';
import { accountFindings, type AwsAccount } from './account';
import { awsAccount, awsClients } from './aws-account';
import type { Finding } from './findings';
import { placeholderFindings, uncheckedFindings, type ConfigSources } from './placeholders';

export const USAGE = `refund-relay preflight: is a stage ready to deploy?

  npm run preflight -- --stage <${STAGE_NAMES.join('|')}> [--online | --offline] [--json]

Offline it lists every placeholder value still in lib/stage-config.ts and cdk.context.json.
With your AWS credentials (found in the environment or ~/.aws, or forced with --online) it also
checks the account read-only: the CDK bootstrap, the Lambda concurrency quota, the Elastic IP
allocations, the certificate, the hosted zone, the secrets and their keys (names only, never
values), and once deployed, that the custom domain resolves to the API.
Exit codes: 0 ready, 1 not ready (or a usage error).`;

export interface PreflightIo {
  out(text: string): void;
  err(text: string): void;
}

export interface PreflightDeps {
  readonly stages?: Readonly<Record<string, StageConfig>>;
  readonly sources?: ConfigSources;
  readonly env?: NodeJS.ProcessEnv;
  /** Where ~/.aws is looked for. */
  readonly home?: string;
  readonly account?: (config: StageConfig) => AwsAccount;
  readonly now?: () => Date;
}

export interface PreflightResult {
  readonly stage: string;
  readonly account: string;
  readonly region: string;
  readonly mode: 'online' | 'offline';
  /** Why the mode is what it is, in a sentence. */
  readonly modeReason: string;
  readonly ready: boolean;
  readonly findings: readonly Finding[];
  readonly monthlyCost: CostEstimate;
}

const ROOT = join(__dirname, '..', '..');

export function committedSources(): ConfigSources {
  return {
    stageConfigText: readFileSync(join(ROOT, 'lib', 'stage-config.ts'), 'utf8'),
    context: JSON.parse(readFileSync(join(ROOT, 'cdk.context.json'), 'utf8')) as Record<string, unknown>,
  };
}

/** Whether the default credential chain has anything to work with, without calling AWS. */
export function credentialsPresent(env: NodeJS.ProcessEnv, home: string): string | undefined {
  for (const name of [
    'AWS_ACCESS_KEY_ID',
    'AWS_PROFILE',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  ]) {
    if (env[name]) return `${name} is set`;
  }
  for (const file of ['credentials', 'config']) if (existsSync(join(home, '.aws', file))) return `~/.aws/${file} exists`;
  return undefined;
}

const CREDENTIAL_ERRORS = ['CredentialsProviderError', 'ExpiredToken', 'ExpiredTokenException', 'InvalidClientTokenId', 'UnrecognizedClientException'];

/** Checks one stage; `online` decides whether the account is read too. */
export async function preflight(stageName: string, online: 'auto' | 'yes' | 'no', deps: PreflightDeps = {}): Promise<PreflightResult> {
  const stages: Readonly<Record<string, StageConfig>> = deps.stages ?? STAGES;
  if (!Object.hasOwn(stages, stageName))
    throw new PreflightUsageError(`unknown stage ${JSON.stringify(stageName)}: the stages are ${Object.keys(stages).join(', ')}`);
  const config = stages[stageName]!;
  const findings = placeholderFindings(config, deps.sources ?? committedSources());
  const base = { stage: config.stage, account: config.account, region: config.region, monthlyCost: monthlyCost(config) };
  const found = online === 'yes' ? '--online' : credentialsPresent(deps.env ?? process.env, deps.home ?? homedir());
  if (online === 'no' || !found) {
    const modeReason =
      online === 'no' ? '--offline: the account was not checked' : 'no AWS credentials found (environment, ~/.aws): the account was not checked';
    return result(base, 'offline', modeReason, findings);
  }
  const account = (deps.account ?? ((stage) => awsAccount(awsClients(stage.region))))(config);
  try {
    findings.push(...(await accountFindings(config, account, deps.now?.() ?? new Date())));
  } catch (error) {
    const name = (error as { name?: string }).name ?? '';
    if (online === 'auto' && CREDENTIAL_ERRORS.includes(name)) {
      return result(base, 'offline', `credentials found (${found}) but not usable (${name}): the account was not checked`, [
        ...findings,
        ...uncheckedFindings(config),
      ]);
    }
    findings.push({ level: 'fill', where: 'AWS', message: `checking the account failed: ${name || 'error'}: ${(error as Error).message}` });
  }
  return result(base, 'online', `with your AWS credentials (${found})`, findings);
}

function result(
  base: Omit<PreflightResult, 'mode' | 'modeReason' | 'ready' | 'findings'>,
  mode: 'online' | 'offline',
  modeReason: string,
  findings: Finding[],
): PreflightResult {
  return { ...base, mode, modeReason, ready: !findings.some((finding) => finding.level === 'fill'), findings };
}

export class PreflightUsageError extends Error {
  override readonly name = 'PreflightUsageError';
}

/** The report an engineer reads: one numbered list of everything to fill in, then what is left to do. */
export function renderReport(result: PreflightResult): string {
  const { stage, account, region, mode, modeReason, findings, monthlyCost: cost } = result;
  const of = (level: Finding['level']) => findings.filter((finding) => finding.level === level);
  const lines = [`refund-relay preflight: stage ${stage} → account ${account}, ${region}`, `${mode === 'online' ? 'Online' : 'Offline'}: ${modeReason}.`, ''];
  const fills = of('fill');
  if (fills.length > 0) {
    lines.push(`Fill in or fix before deploying (${fills.length}):`);
    fills.forEach((finding, index) => lines.push(`  ${String(index + 1).padStart(2)}. ${finding.where}`, `      ${finding.message}`));
    lines.push('');
  }
  const todos = of('todo');
  if (todos.length > 0) {
    lines.push(`To do (${todos.length}), not blocking the deploy:`);
    for (const finding of todos) lines.push(`   - ${finding.where}`, `      ${finding.message}`);
    lines.push('');
  }
  const oks = of('ok');
  if (oks.length > 0) {
    lines.push(`Checked (${oks.length}):`);
    for (const finding of oks) lines.push(`   ✓ ${finding.where}: ${finding.message}`);
    lines.push('');
  }
  lines.push(
    `Standing cost at list prices: $${cost.totalUsd.toFixed(2)}/month (${cost.lines.map((line) => `${line.item} $${line.monthlyUsd.toFixed(2)}`).join(', ')}); traffic adds a few dollars.`,
    '',
  );
  lines.push(
    result.ready
      ? mode === 'online'
        ? `READY: npm run deploy -- --stage ${stage}`
        : `Nothing to fill in offline. Run again with credentials before deploying (npm run deploy does).`
      : `NOT READY: ${fills.length} to fill in or fix. Deploying stage ${stage} now would fail or leave it broken.`,
  );
  return lines.join('\n');
}

export async function runPreflight(argv: readonly string[], io: PreflightIo, deps: PreflightDeps = {}): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: [...argv],
      options: { stage: { type: 'string' }, online: { type: 'boolean' }, offline: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
      strict: true,
    }).values;
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${USAGE}`);
    return 1;
  }
  if (args.help) {
    io.out(USAGE);
    return 0;
  }
  if (!args.stage || (args.online && args.offline)) {
    io.err(`${args.stage ? '--online and --offline exclude each other' : 'which stage? --stage is required'}\n\n${USAGE}`);
    return 1;
  }
  try {
    const checked = await preflight(args.stage, args.online ? 'yes' : args.offline ? 'no' : 'auto', deps);
    io.out(args.json ? JSON.stringify(checked, null, 2) : renderReport(checked));
    return checked.ready ? 0 : 1;
  } catch (error) {
    if (!(error instanceof PreflightUsageError)) throw error;
    io.err(error.message);
    return 1;
  }
}
