import { PROVIDER_MODULES } from '../../lambdas/providers/modules';
import { PROVIDER_IDS, SECRET_NAMES, secretNameOf, type SecretName } from '../../lambdas/providers/registry';
import { DISPATCH_BUDGET } from '../../lib/dispatch-queue';
import { FUNCTIONS } from '../../lib/function-registry';
import { secretsPrefix } from '../../lib/provider-secrets';
import { stackName } from '../../lib/refund-relay-stack';
import type { StageConfig } from '../../lib/stage-config';
import { fill, ok, todo, type Finding } from './findings';

/**
 * The online half of the preflight: what the stage's configuration assumes about the AWS account,
 * checked with the engineer's own credentials, read-only. The port below is all it asks of AWS;
 * aws-account.ts implements it with the SDK.
 */
export interface ElasticIpView {
  readonly publicIp: string;
  readonly domain: string;
  /** The NAT gateway using the address, and the stack that made it, when one does. */
  readonly natGateway?: { readonly id: string; readonly stackName?: string };
  /** Any other use of the address (an instance, another network interface). */
  readonly associatedWith?: string;
}

export interface CertificateView {
  readonly status: string;
  readonly domainNames: readonly string[];
  readonly notAfter?: Date;
  /** The DNS records ACM waits for, while it validates. */
  readonly validationRecords: readonly string[];
}

export interface SecretView {
  readonly scheduledForDeletion?: Date;
  /** The KMS key id or ARN the secret is encrypted with; absent for the default aws/secretsmanager key. */
  readonly kmsKeyId?: string;
  /** The parsed value, read only to check its keys: never printed or returned. */
  readonly value: () => Promise<unknown>;
}

export interface AwsAccount {
  callerAccount(): Promise<string>;
  isBootstrapped(): Promise<boolean>;
  lambdaConcurrency(): Promise<{ readonly limit: number; readonly unreserved: number }>;
  elasticIp(allocationId: string): Promise<ElasticIpView | undefined>;
  certificate(arn: string): Promise<CertificateView | undefined>;
  hostedZone(id: string): Promise<{ readonly name: string; readonly isPrivate: boolean } | undefined>;
  /** Record types already at exactly this name in the zone. */
  recordTypes(zoneId: string, name: string): Promise<readonly string[]>;
  secret(name: string): Promise<SecretView | undefined>;
  /** The deployed stack's outputs, or undefined when the stack does not exist. */
  stackOutputs(name: string): Promise<Readonly<Record<string, string>> | undefined>;
  /** IPv4 addresses a name resolves to (empty when it does not). */
  resolve(hostname: string): Promise<readonly string[]>;
}

/** Service Quotas code of "Concurrent executions" for Lambda. */
const CONCURRENCY_QUOTA = 'L-B99A9384';
/** What a new account is given, and what AWS grants on request without question. */
const COMFORTABLE_CONCURRENCY = 100;
const RENEWAL_WARNING_DAYS = 30;

export async function accountFindings(config: StageConfig, aws: AwsAccount, now: Date = new Date()): Promise<Finding[]> {
  const account = await aws.callerAccount();
  if (account !== config.account) {
    return [
      fill(
        'your AWS credentials',
        `they are for account ${account}, but stage ${config.stage} deploys to ${config.account}: use that account's credentials (AWS_PROFILE)`,
      ),
    ];
  }
  const stack = stackName(config.stage);
  const outputs = await aws.stackOutputs(stack);
  const findings: Finding[] = [ok('AWS account', `${account}, ${config.region}; stack ${stack} ${outputs ? 'is deployed' : 'is not deployed yet'}`)];
  findings.push(
    (await aws.isBootstrapped())
      ? ok('CDK bootstrap', `stack CDKToolkit exists in ${config.region}`)
      : fill('CDK bootstrap', `the account is not bootstrapped in ${config.region}: npx cdk bootstrap aws://${config.account}/${config.region}`),
  );
  findings.push(...(await concurrencyFindings(aws)));
  findings.push(...(await elasticIpFindings(config, aws, stack, outputs)));
  findings.push(...(await domainFindings(config, aws, outputs, now)));
  findings.push(...(await secretFindings(config, aws, outputs !== undefined)));
  return findings;
}

/**
 * No function reserves concurrency (a new account's quota of 10 cannot give any), but everything
 * shares the account's quota: the dispatcher's concurrent batches, the scheduled runs and the API.
 */
async function concurrencyFindings(aws: AwsAccount): Promise<Finding[]> {
  const { limit } = await aws.lambdaConcurrency();
  const scheduled = FUNCTIONS.filter((definition) => definition.schedule).length;
  const needed = DISPATCH_BUDGET.maxConcurrency + scheduled + 1;
  const where = 'Lambda concurrency quota';
  const raise = `request more: aws service-quotas request-service-quota-increase --service-code lambda --quota-code ${CONCURRENCY_QUOTA} --desired-value 1000`;
  if (limit < needed) {
    return [
      fill(
        where,
        `${limit} concurrent executions: the dispatcher (${DISPATCH_BUDGET.maxConcurrency}), ${scheduled} scheduled functions and the API need ${needed}; ${raise}`,
      ),
    ];
  }
  if (limit < COMFORTABLE_CONCURRENCY) {
    return [todo(where, `${limit} concurrent executions (a new account's quota): the API would be throttled while the dispatcher works a backlog; ${raise}`)];
  }
  return [ok(where, `${limit} concurrent executions`)];
}

async function elasticIpFindings(
  config: StageConfig,
  aws: AwsAccount,
  stack: string,
  outputs: Readonly<Record<string, string>> | undefined,
): Promise<Finding[]> {
  const pinned = config.egress.elasticIpAllocationIds ?? [];
  const handedOut = outputs?.EgressIps ? outputs.EgressIps.split(',') : undefined;
  const findings: Finding[] = [];
  for (const allocationId of pinned) {
    const where = `Elastic IP ${allocationId}`;
    const address = await aws.elasticIp(allocationId);
    if (!address) {
      findings.push(
        fill(
          where,
          `no such allocation in ${config.account} ${config.region}: aws ec2 allocate-address --domain vpc --region ${config.region}, then list its AllocationId`,
        ),
      );
    } else if (address.domain !== 'vpc') {
      findings.push(fill(where, `${address.publicIp} is an EC2-Classic address; NAT gateways need a VPC allocation`));
    } else if (address.natGateway && address.natGateway.stackName !== stack) {
      findings.push(
        fill(
          where,
          `${address.publicIp} is taken by NAT gateway ${address.natGateway.id}${address.natGateway.stackName ? ` of stack ${address.natGateway.stackName}` : ''}: the new NAT gateway would fail`,
        ),
      );
    } else if (address.associatedWith) {
      findings.push(
        fill(where, `${address.publicIp} is associated with ${address.associatedWith}: the NAT gateway would fail; disassociate it or allocate another`),
      );
    } else if (handedOut && !handedOut.includes(address.publicIp)) {
      findings.push(
        fill(
          where,
          `${address.publicIp} is not among the addresses stack ${stack} handed out (${handedOut.join(', ')}): Ap21 and the providers allowlisted those`,
        ),
      );
    } else {
      findings.push(ok(where, `${address.publicIp}: an egress IP to hand to Ap21 and the providers`));
    }
  }
  return findings;
}

const covers = (pattern: string, domainName: string) =>
  pattern === domainName || (pattern.startsWith('*.') && domainName.endsWith(pattern.slice(1)) && !domainName.slice(0, -pattern.length + 1).includes('.'));

async function domainFindings(config: StageConfig, aws: AwsAccount, outputs: Readonly<Record<string, string>> | undefined, now: Date): Promise<Finding[]> {
  const domain = config.customDomain;
  if (!domain) return [];
  const findings: Finding[] = [];
  const certificate = await aws.certificate(domain.certificateArn);
  const certWhere = `certificate ${domain.certificateArn}`;
  if (!certificate) {
    findings.push(fill(certWhere, `not found in ${config.account} ${config.region}`));
  } else if (certificate.status !== 'ISSUED') {
    const records = certificate.validationRecords.length ? `; ACM waits for: ${certificate.validationRecords.join('; ')}` : '';
    findings.push(fill(certWhere, `is ${certificate.status}, not ISSUED${records}`));
  } else if (!certificate.domainNames.some((name) => covers(name, domain.domainName))) {
    findings.push(fill(certWhere, `covers ${certificate.domainNames.join(', ')}, not ${domain.domainName}`));
  } else if (certificate.notAfter && certificate.notAfter.getTime() < now.getTime()) {
    findings.push(fill(certWhere, `expired on ${certificate.notAfter.toISOString().slice(0, 10)}`));
  } else if (certificate.notAfter && certificate.notAfter.getTime() - now.getTime() < RENEWAL_WARNING_DAYS * 86_400_000) {
    findings.push(todo(certWhere, `expires on ${certificate.notAfter.toISOString().slice(0, 10)}: check that ACM can renew it`));
  } else {
    findings.push(ok(certWhere, `issued for ${domain.domainName}`));
  }

  const zone = domain.hostedZone;
  if (zone) {
    const found = await aws.hostedZone(zone.id);
    const zoneWhere = `hosted zone ${zone.id}`;
    if (!found)
      findings.push(fill(zoneWhere, `not found: the Route 53 zone of ${domain.domainName} (aws route53 list-hosted-zones-by-name --dns-name ${zone.name})`));
    else if (found.isPrivate) findings.push(fill(zoneWhere, `${found.name} is private: Apace and the providers resolve the name from the internet`));
    else if (found.name.replace(/\.$/, '') !== zone.name) findings.push(fill(zoneWhere, `is ${found.name}, not ${zone.name}`));
    else if (!outputs) {
      const existing = (await aws.recordTypes(zone.id, domain.domainName)).filter((type) => type === 'A' || type === 'CNAME');
      findings.push(
        existing.length > 0
          ? fill(
              zoneWhere,
              `already has ${existing.join(' and ')} ${domain.domainName}: the stack's alias record would fail; delete it, or remove hostedZone and keep yours`,
            )
          : ok(zoneWhere, `${found.name}: the stack creates the alias record ${domain.domainName}`),
      );
    } else findings.push(ok(zoneWhere, found.name));
  }

  const target = outputs?.CustomDomainTarget;
  if (target) {
    const [resolved, expected] = await Promise.all([aws.resolve(domain.domainName), aws.resolve(target)]);
    const dnsWhere = `DNS ${domain.domainName}`;
    if (resolved.length === 0)
      findings.push(todo(dnsWhere, `does not resolve: callback URLs fail until it does. Create: ${outputs.CustomDomainDnsRecord ?? `CNAME to ${target}`}`));
    else if (!resolved.some((address) => expected.includes(address))) {
      findings.push(fill(dnsWhere, `resolves to ${resolved.join(', ')}, not to the API (${target}: ${expected.join(', ')})`));
    } else findings.push(ok(dnsWhere, `resolves to the API (${target})`));
  }
  return findings;
}

/**
 * Each provider secret exists and holds every key its schema requires. Values are read to check
 * their keys and never printed: a finding names keys only.
 */
async function secretFindings(config: StageConfig, aws: AwsAccount, deployed: boolean): Promise<Finding[]> {
  const findings: Finding[] = [];
  const defaultKey = (keyId: string | undefined) => keyId === undefined || keyId === 'alias/aws/secretsmanager' || keyId.endsWith(':alias/aws/secretsmanager');
  for (const name of SECRET_NAMES) {
    const secretName = `${secretsPrefix(config.stage)}${name}`;
    const where = `secret ${secretName}`;
    const secret = await aws.secret(secretName);
    if (secret?.scheduledForDeletion) {
      findings.push(
        fill(
          where,
          `is scheduled for deletion (${secret.scheduledForDeletion.toISOString().slice(0, 10)}) and blocks its name: aws secretsmanager restore-secret --secret-id ${secretName}` +
            (config.providerSecrets === 'create'
              ? `, or free the name: aws secretsmanager delete-secret --secret-id ${secretName} --force-delete-without-recovery`
              : ''),
        ),
      );
      continue;
    }
    if (config.providerSecrets === 'create') {
      if (!secret) {
        findings.push(ok(where, 'the stack creates it'));
        continue;
      }
      if (!deployed) {
        findings.push(fill(where, `exists already, so the stack cannot create it: delete it, or set providerSecrets 'import' for stage ${config.stage}`));
        continue;
      }
    } else if (!secret) {
      findings.push(
        fill(
          where,
          `does not exist; the stage imports it: aws secretsmanager create-secret --name ${secretName} --secret-string file://${name}.json (keys: README, Secrets)`,
        ),
      );
      continue;
    } else if (!defaultKey(secret.kmsKeyId) && secret.kmsKeyId !== config.providerSecretsKeyArn) {
      findings.push(
        fill(
          where,
          `is encrypted with the customer-managed key ${secret.kmsKeyId}: set providerSecretsKeyArn of stage ${config.stage} to its ARN, or the functions cannot decrypt it`,
        ),
      );
      continue;
    }
    const problems = await secretKeyProblems(name, await secret.value());
    if (problems.length === 0) findings.push(ok(where, 'holds every required key'));
    else {
      const store = `aws secretsmanager put-secret-value --secret-id ${secretName} --secret-string file://${name}.json`;
      // Before a deploy that imports it, a secret without its keys is a broken stage; after a
      // deploy that created it, storing the values is the next step.
      const finding = config.providerSecrets === 'import' ? fill : todo;
      findings.push(finding(where, `${problems.join('; ')}: ${store} (keys: README, Secrets)`));
    }
  }
  return findings;
}

/** What is missing or wrong in a secret's JSON, by key name only. */
export async function secretKeyProblems(name: SecretName, value: unknown): Promise<string[]> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return ['is not a JSON object'];
  const provider = PROVIDER_IDS.find((id) => secretNameOf(id) === name);
  if (!provider) return [`${name} is no provider's secret`];
  const result = (await PROVIDER_MODULES[provider].secretSchema()).safeParse(value);
  if (result.success) return [];
  const present = new Set(Object.keys(value));
  const problems = new Set<string>();
  for (const issue of result.error.issues) {
    const key = issue.path[0];
    if (key === undefined) problems.add(issue.message);
    else if (!present.has(String(key))) problems.add(`${String(key)} is missing`);
    else problems.add(`${String(key)} is not valid (${issue.message})`);
  }
  return [...problems];
}
