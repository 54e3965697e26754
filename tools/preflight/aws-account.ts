import { resolve4 } from 'node:dns/promises';
import { ACMClient, DescribeCertificateCommand } from '@aws-sdk/client-acm';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeAddressesCommand, DescribeNatGatewaysCommand, EC2Client, type NatGateway } from '@aws-sdk/client-ec2';
import { GetAccountSettingsCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetHostedZoneCommand, ListResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import { DescribeSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsAccount, ElasticIpView } from './account';

/** The SDK clients the preflight reads the account with (read-only calls only). */
export interface AwsClients {
  readonly sts: STSClient;
  readonly cloudFormation: CloudFormationClient;
  readonly lambda: LambdaClient;
  readonly ec2: EC2Client;
  readonly acm: ACMClient;
  readonly route53: Route53Client;
  readonly secretsManager: SecretsManagerClient;
}

/** Clients for the stage's region, with the default credential chain (AWS_PROFILE, SSO, environment…). */
export function awsClients(region: string): AwsClients {
  return {
    sts: new STSClient({ region }),
    cloudFormation: new CloudFormationClient({ region }),
    lambda: new LambdaClient({ region }),
    ec2: new EC2Client({ region }),
    acm: new ACMClient({ region }),
    route53: new Route53Client({ region }),
    secretsManager: new SecretsManagerClient({ region }),
  };
}

const errorName = (error: unknown) => (error as { name?: string }).name ?? '';

/** undefined for the "no such thing" answers a check expects; anything else is thrown. */
async function unlessMissing<T>(call: Promise<T>, missing: readonly string[], message?: RegExp): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (missing.includes(errorName(error)) && (!message || message.test((error as Error).message))) return undefined;
    throw error;
  }
}

const STACK_NAME_TAG = 'aws:cloudformation:stack-name';

/** The AwsAccount port over the AWS SDK. */
export function awsAccount(clients: AwsClients, resolve: (hostname: string) => Promise<string[]> = resolve4): AwsAccount {
  const stackOutputs = async (name: string) => {
    const answer = await unlessMissing(clients.cloudFormation.send(new DescribeStacksCommand({ StackName: name })), ['ValidationError'], /does not exist/);
    const stack = answer?.Stacks?.[0];
    if (!stack) return undefined;
    return Object.fromEntries(
      (stack.Outputs ?? []).flatMap((output) => (output.OutputKey && output.OutputValue !== undefined ? [[output.OutputKey, output.OutputValue]] : [])),
    );
  };

  const natGatewayUsing = async (allocationId: string): Promise<NatGateway | undefined> => {
    let token: string | undefined;
    do {
      const page = await clients.ec2.send(new DescribeNatGatewaysCommand({ Filter: [{ Name: 'state', Values: ['pending', 'available'] }], NextToken: token }));
      const found = page.NatGateways?.find((nat) => nat.NatGatewayAddresses?.some((address) => address.AllocationId === allocationId));
      if (found) return found;
      token = page.NextToken;
    } while (token);
    return undefined;
  };

  return {
    async callerAccount() {
      const { Account } = await clients.sts.send(new GetCallerIdentityCommand({}));
      if (!Account) throw new Error('STS did not say which account these credentials are for');
      return Account;
    },
    async isBootstrapped() {
      return (await stackOutputs('CDKToolkit')) !== undefined;
    },
    async lambdaConcurrency() {
      const { AccountLimit } = await clients.lambda.send(new GetAccountSettingsCommand({}));
      return { limit: AccountLimit?.ConcurrentExecutions ?? 0, unreserved: AccountLimit?.UnreservedConcurrentExecutions ?? 0 };
    },
    async elasticIp(allocationId) {
      const answer = await unlessMissing(clients.ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] })), ['InvalidAllocationID.NotFound']);
      const address = answer?.Addresses?.[0];
      if (!address?.PublicIp) return undefined;
      const view: ElasticIpView = { publicIp: address.PublicIp, domain: address.Domain ?? 'vpc' };
      if (!address.AssociationId && !address.NetworkInterfaceId) return view;
      const nat = await natGatewayUsing(allocationId);
      if (nat?.NatGatewayId) {
        const stackName = nat.Tags?.find((tag) => tag.Key === STACK_NAME_TAG)?.Value;
        return { ...view, natGateway: { id: nat.NatGatewayId, ...(stackName && { stackName }) } };
      }
      return { ...view, associatedWith: address.InstanceId ?? address.NetworkInterfaceId ?? address.AssociationId ?? 'something else' };
    },
    async certificate(arn) {
      const answer = await unlessMissing(clients.acm.send(new DescribeCertificateCommand({ CertificateArn: arn })), ['ResourceNotFoundException']);
      const certificate = answer?.Certificate;
      if (!certificate) return undefined;
      return {
        status: certificate.Status ?? 'UNKNOWN',
        domainNames: [...new Set([certificate.DomainName, ...(certificate.SubjectAlternativeNames ?? [])].filter((name): name is string => Boolean(name)))],
        ...(certificate.NotAfter && { notAfter: certificate.NotAfter }),
        validationRecords: (certificate.DomainValidationOptions ?? []).flatMap((option) =>
          option.ResourceRecord && option.ValidationStatus !== 'SUCCESS'
            ? [`${option.ResourceRecord.Name} ${option.ResourceRecord.Type} ${option.ResourceRecord.Value}`]
            : [],
        ),
      };
    },
    async hostedZone(id) {
      const answer = await unlessMissing(clients.route53.send(new GetHostedZoneCommand({ Id: id })), ['NoSuchHostedZone', 'InvalidInput']);
      const zone = answer?.HostedZone;
      return zone?.Name ? { name: zone.Name, isPrivate: zone.Config?.PrivateZone ?? false } : undefined;
    },
    async recordTypes(zoneId, name) {
      const answer = await clients.route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId, StartRecordName: name, MaxItems: 10 }));
      const fqdn = `${name}.`;
      return (answer.ResourceRecordSets ?? []).filter((record) => record.Name === fqdn).flatMap((record) => (record.Type ? [record.Type] : []));
    },
    async secret(name) {
      const described = await unlessMissing(clients.secretsManager.send(new DescribeSecretCommand({ SecretId: name })), ['ResourceNotFoundException']);
      if (!described) return undefined;
      return {
        ...(described.DeletedDate && { scheduledForDeletion: described.DeletedDate }),
        ...(described.KmsKeyId && { kmsKeyId: described.KmsKeyId }),
        value: async () => {
          const { SecretString } = await clients.secretsManager.send(new GetSecretValueCommand({ SecretId: name }));
          try {
            return JSON.parse(SecretString ?? '') as unknown;
          } catch {
            return undefined;
          }
        },
      };
    },
    stackOutputs,
    async resolve(hostname) {
      try {
        return await resolve(hostname);
      } catch {
        return [];
      }
    },
  };
}
