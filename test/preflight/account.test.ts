import { ACMClient, DescribeCertificateCommand, ResourceNotFoundException as CertificateNotFound } from '@aws-sdk/client-acm';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeAddressesCommand, DescribeNatGatewaysCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetAccountSettingsCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetHostedZoneCommand, ListResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  ResourceNotFoundException as SecretNotFound,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { SECRET_NAMES, type SecretName } from '../../lambdas/providers/registry';
import { STAGES, type StageConfig } from '../../lib/stage-config';
import { generateLocalSecrets } from '../../local/secrets-file';
import { awsAccount, type AwsClients } from '../../tools/preflight/aws-account';
import { runPreflight, type PreflightDeps } from '../../tools/preflight/preflight';
import { FILLED_PROD, filledSources } from './fixtures';

/**
 * The online preflight against a mocked AWS account: the real SDK clients and the real adapter
 * (tools/preflight/aws-account.ts), with each client's answers mocked (aws-sdk-client-mock). The
 * account starts healthy for the filled-in prod stage; each test breaks one thing.
 */
const REGION = 'ap-southeast-2';
const [ALLOCATION_A, ALLOCATION_B] = FILLED_PROD.egress.elasticIpAllocationIds!;
const ADDRESSES: Record<string, string> = { [ALLOCATION_A!]: '13.54.1.2', [ALLOCATION_B!]: '13.55.3.4' };
const DOMAIN = FILLED_PROD.customDomain!.domainName;
const API_TARGET = 'd-abc123.execute-api.ap-southeast-2.amazonaws.com';

const awsError = (name: string, message: string) => Object.assign(new Error(message), { name, $metadata: {} });

let clients: AwsClients;
let mocks: { [K in keyof AwsClients]: ReturnType<typeof mockClient> };
let secrets: Record<SecretName, Record<string, unknown>>;
let dns: Record<string, string[]>;

beforeEach(() => {
  clients = {
    sts: new STSClient({ region: REGION }),
    cloudFormation: new CloudFormationClient({ region: REGION }),
    lambda: new LambdaClient({ region: REGION }),
    ec2: new EC2Client({ region: REGION }),
    acm: new ACMClient({ region: REGION }),
    route53: new Route53Client({ region: REGION }),
    secretsManager: new SecretsManagerClient({ region: REGION }),
  };
  mocks = {
    sts: mockClient(clients.sts),
    cloudFormation: mockClient(clients.cloudFormation),
    lambda: mockClient(clients.lambda),
    ec2: mockClient(clients.ec2),
    acm: mockClient(clients.acm),
    route53: mockClient(clients.route53),
    secretsManager: mockClient(clients.secretsManager),
  };
  secrets = generateLocalSecrets();
  dns = {};
  mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: FILLED_PROD.account });
  mocks.cloudFormation
    .on(DescribeStacksCommand, { StackName: 'CDKToolkit' })
    .resolves({ Stacks: [{ StackName: 'CDKToolkit', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE' }] });
  notDeployed();
  mocks.lambda.on(GetAccountSettingsCommand).resolves({ AccountLimit: { ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 1000 } });
  for (const [id, ip] of Object.entries(ADDRESSES))
    mocks.ec2.on(DescribeAddressesCommand, { AllocationIds: [id] }).resolves({ Addresses: [{ AllocationId: id, PublicIp: ip, Domain: 'vpc' }] });
  mocks.ec2.on(DescribeNatGatewaysCommand).resolves({ NatGateways: [] });
  mocks.acm.on(DescribeCertificateCommand).resolves({
    Certificate: { Status: 'ISSUED', DomainName: DOMAIN, SubjectAlternativeNames: [DOMAIN], NotAfter: new Date('2027-09-01T00:00:00Z') },
  });
  mocks.route53
    .on(GetHostedZoneCommand)
    .resolves({ HostedZone: { Id: '/hostedzone/Z04567891ABCDEFGHIJKL', Name: 'acme-apparel.com.au.', CallerReference: 'x', Config: { PrivateZone: false } } });
  mocks.route53
    .on(ListResourceRecordSetsCommand)
    .resolves({ ResourceRecordSets: [{ Name: 'acme-apparel.com.au.', Type: 'NS' }], IsTruncated: false, MaxItems: 10 });
  mocks.secretsManager.on(DescribeSecretCommand).resolves({});
  for (const name of SECRET_NAMES) {
    mocks.secretsManager
      .on(GetSecretValueCommand, { SecretId: `refund-relay/prod/${name}` })
      .callsFake(() => ({ SecretString: JSON.stringify(secrets[name]) }));
  }
});

function notDeployed(stage = 'prod') {
  mocks.cloudFormation
    .on(DescribeStacksCommand, { StackName: `refund-relay-${stage}` })
    .rejects(awsError('ValidationError', `Stack with id refund-relay-${stage} does not exist`));
}

function deployed(outputs: Record<string, string>, stage = 'prod') {
  mocks.cloudFormation.on(DescribeStacksCommand, { StackName: `refund-relay-${stage}` }).resolves({
    Stacks: [
      {
        StackName: `refund-relay-${stage}`,
        CreationTime: new Date(),
        StackStatus: 'UPDATE_COMPLETE',
        Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
      },
    ],
  });
}

async function check(config: StageConfig = FILLED_PROD, argv: string[] = ['--online'], deps: PreflightDeps = {}) {
  let out = '';
  let err = '';
  const code = await runPreflight(
    ['--stage', config.stage, ...argv],
    { out: (text) => (out += `${text}\n`), err: (text) => (err += `${text}\n`) },
    {
      stages: { [config.stage]: config },
      sources: filledSources(),
      env: {},
      home: '/nonexistent',
      account: () => awsAccount(clients, async (hostname) => dns[hostname] ?? []),
      now: () => new Date('2026-12-01T00:00:00Z'),
      ...deps,
    },
  );
  return { code, out, err };
}

/** The numbered "fill in or fix" list, each entry as `where: message`. */
const refusals = (out: string) => [...out.matchAll(/^\s+\d+\. (.+)\n\s+(.+)$/gm)].map((match) => `${match[1]}: ${match[2]}`);

describe('the preflight with credentials, on a filled-in stage', () => {
  it('finds the account ready, names the egress IPs, and exits 0', async () => {
    const { code, out } = await check();
    expect(refusals(out)).toEqual([]);
    expect(out).toContain('Online: with your AWS credentials (--online).');
    expect(out).toContain(`✓ Elastic IP ${ALLOCATION_A}: 13.54.1.2: an egress IP to hand to Ap21 and the providers`);
    expect(out).toContain('✓ Lambda concurrency quota: 1000 concurrent executions');
    expect(out).toContain(`✓ certificate ${FILLED_PROD.customDomain!.certificateArn}: issued for ${DOMAIN}`);
    expect(out).toContain(`✓ hosted zone Z04567891ABCDEFGHIJKL: acme-apparel.com.au.: the stack creates the alias record ${DOMAIN}`);
    for (const name of SECRET_NAMES) expect(out).toContain(`✓ secret refund-relay/prod/${name}: holds every required key`);
    expect(out).toContain('READY: npm run deploy -- --stage prod');
    expect(code).toBe(0);
  });

  it('checks the account automatically when credentials are found, and falls back to offline when they do not work', async () => {
    expect((await check(FILLED_PROD, [], { env: { AWS_PROFILE: 'acme-prod' } })).out).toContain('Online: with your AWS credentials (AWS_PROFILE is set).');
    mocks.sts.on(GetCallerIdentityCommand).rejects(awsError('CredentialsProviderError', 'Could not load credentials from any providers'));
    const fallback = await check(FILLED_PROD, [], { env: { AWS_PROFILE: 'acme-prod' } });
    expect(fallback.out).toContain('Offline: credentials found (AWS_PROFILE is set) but not usable (CredentialsProviderError): the account was not checked.');
    // Asked for explicitly, credentials that do not work are a refusal.
    expect(refusals((await check()).out)).toEqual([
      'AWS: checking the account failed: CredentialsProviderError: Could not load credentials from any providers',
    ]);
  });
});

describe('the preflight with credentials refuses', () => {
  it('credentials for another account, before checking anything else', async () => {
    mocks.sts.on(GetCallerIdentityCommand).resolves({ Account: '999999999990' });
    expect(refusals((await check()).out)).toEqual([
      "your AWS credentials: they are for account 999999999990, but stage prod deploys to 482911735106: use that account's credentials (AWS_PROFILE)",
    ]);
  });

  it('an account that is not bootstrapped', async () => {
    mocks.cloudFormation.on(DescribeStacksCommand, { StackName: 'CDKToolkit' }).rejects(awsError('ValidationError', 'Stack with id CDKToolkit does not exist'));
    expect(refusals((await check()).out)).toEqual([
      'CDK bootstrap: the account is not bootstrapped in ap-southeast-2: npx cdk bootstrap aws://482911735106/ap-southeast-2',
    ]);
  });

  it("a concurrency quota too small for the dispatcher, the schedules and the API, and flags a new account's 10", async () => {
    mocks.lambda.on(GetAccountSettingsCommand).resolves({ AccountLimit: { ConcurrentExecutions: 5, UnreservedConcurrentExecutions: 5 } });
    expect(refusals((await check()).out)).toEqual([
      'Lambda concurrency quota: 5 concurrent executions: the dispatcher (5), 2 scheduled functions and the API need 8; request more: aws service-quotas request-service-quota-increase --service-code lambda --quota-code L-B99A9384 --desired-value 1000',
    ]);
    mocks.lambda.on(GetAccountSettingsCommand).resolves({ AccountLimit: { ConcurrentExecutions: 10, UnreservedConcurrentExecutions: 10 } });
    const { code, out } = await check();
    expect(code).toBe(0);
    expect(out).toContain("Lambda concurrency quota\n      10 concurrent executions (a new account's quota)");
  });

  it('an allocation that does not exist, one on another NAT gateway, and one another resource holds', async () => {
    mocks.ec2
      .on(DescribeAddressesCommand, { AllocationIds: [ALLOCATION_A!] })
      .rejects(awsError('InvalidAllocationID.NotFound', `The allocation ID '${ALLOCATION_A}' does not exist`));
    mocks.ec2.on(DescribeAddressesCommand, { AllocationIds: [ALLOCATION_B!] }).resolves({
      Addresses: [{ AllocationId: ALLOCATION_B, PublicIp: '13.55.3.4', Domain: 'vpc', AssociationId: 'eipassoc-1', NetworkInterfaceId: 'eni-1' }],
    });
    mocks.ec2.on(DescribeNatGatewaysCommand).resolves({
      NatGateways: [
        {
          NatGatewayId: 'nat-0abc',
          NatGatewayAddresses: [{ AllocationId: ALLOCATION_B }],
          Tags: [{ Key: 'aws:cloudformation:stack-name', Value: 'legacy-egress' }],
        },
      ],
    });
    expect(refusals((await check()).out)).toEqual([
      `Elastic IP ${ALLOCATION_A}: no such allocation in 482911735106 ap-southeast-2: aws ec2 allocate-address --domain vpc --region ap-southeast-2, then list its AllocationId`,
      `Elastic IP ${ALLOCATION_B}: 13.55.3.4 is taken by NAT gateway nat-0abc of stack legacy-egress: the new NAT gateway would fail`,
    ]);
    mocks.ec2.on(DescribeNatGatewaysCommand).resolves({ NatGateways: [] });
    mocks.ec2
      .on(DescribeAddressesCommand, { AllocationIds: [ALLOCATION_B!] })
      .resolves({ Addresses: [{ AllocationId: ALLOCATION_B, PublicIp: '13.55.3.4', Domain: 'vpc', AssociationId: 'eipassoc-1', InstanceId: 'i-0123' }] });
    expect(refusals((await check()).out)).toContain(
      `Elastic IP ${ALLOCATION_B}: 13.55.3.4 is associated with i-0123: the NAT gateway would fail; disassociate it or allocate another`,
    );
  });

  it('an allocation whose address is not the one the deployed stack handed out', async () => {
    deployed({ EgressIps: '13.54.1.2,13.55.9.9', CustomDomainTarget: API_TARGET });
    dns = { [DOMAIN]: ['3.104.1.1'], [API_TARGET]: ['3.104.1.1'] };
    mocks.ec2.on(DescribeNatGatewaysCommand).resolves({
      NatGateways: [
        {
          NatGatewayId: 'nat-1',
          NatGatewayAddresses: [{ AllocationId: ALLOCATION_A }],
          Tags: [{ Key: 'aws:cloudformation:stack-name', Value: 'refund-relay-prod' }],
        },
      ],
    });
    expect(refusals((await check()).out)).toEqual([
      `Elastic IP ${ALLOCATION_B}: 13.55.3.4 is not among the addresses stack refund-relay-prod handed out (13.54.1.2, 13.55.9.9): Ap21 and the providers allowlisted those`,
    ]);
  });

  it('a certificate still pending validation (with the record ACM waits for), one for another name, one expired', async () => {
    mocks.acm.on(DescribeCertificateCommand).resolves({
      Certificate: {
        Status: 'PENDING_VALIDATION',
        DomainName: DOMAIN,
        DomainValidationOptions: [
          {
            DomainName: DOMAIN,
            ValidationStatus: 'PENDING_VALIDATION',
            ResourceRecord: { Name: '_x1.refunds.acme-apparel.com.au.', Type: 'CNAME', Value: '_y1.acm-validations.aws.' },
          },
        ],
      },
    });
    expect(refusals((await check()).out)).toEqual([
      `certificate ${FILLED_PROD.customDomain!.certificateArn}: is PENDING_VALIDATION, not ISSUED; ACM waits for: _x1.refunds.acme-apparel.com.au. CNAME _y1.acm-validations.aws.`,
    ]);
    mocks.acm
      .on(DescribeCertificateCommand)
      .resolves({ Certificate: { Status: 'ISSUED', DomainName: '*.other.com.au', SubjectAlternativeNames: ['*.other.com.au'] } });
    expect(refusals((await check()).out)[0]).toMatch(/covers \*\.other\.com\.au, not refunds\.acme-apparel\.com\.au$/);
    mocks.acm
      .on(DescribeCertificateCommand)
      .resolves({ Certificate: { Status: 'ISSUED', DomainName: '*.acme-apparel.com.au', NotAfter: new Date('2026-11-01T00:00:00Z') } });
    expect(refusals((await check()).out)[0]).toMatch(/expired on 2026-11-01$/);
    mocks.acm.on(DescribeCertificateCommand).rejects(new CertificateNotFound({ message: 'not found', $metadata: {} }));
    expect(refusals((await check()).out)[0]).toMatch(/not found in 482911735106 ap-southeast-2$/);
  });

  it('a private hosted zone, and an existing record the alias record would collide with', async () => {
    mocks.route53
      .on(GetHostedZoneCommand)
      .resolves({ HostedZone: { Id: 'Z04567891ABCDEFGHIJKL', Name: 'acme-apparel.com.au.', CallerReference: 'x', Config: { PrivateZone: true } } });
    expect(refusals((await check()).out)).toEqual([
      'hosted zone Z04567891ABCDEFGHIJKL: acme-apparel.com.au. is private: Apace and the providers resolve the name from the internet',
    ]);
    mocks.route53
      .on(GetHostedZoneCommand)
      .resolves({ HostedZone: { Id: 'Z04567891ABCDEFGHIJKL', Name: 'acme-apparel.com.au.', CallerReference: 'x', Config: { PrivateZone: false } } });
    mocks.route53.on(ListResourceRecordSetsCommand).resolves({ ResourceRecordSets: [{ Name: `${DOMAIN}.`, Type: 'CNAME' }], IsTruncated: false, MaxItems: 10 });
    expect(refusals((await check()).out)).toEqual([
      `hosted zone Z04567891ABCDEFGHIJKL: already has CNAME ${DOMAIN}: the stack's alias record would fail; delete it, or remove hostedZone and keep yours`,
    ]);
  });

  it('imported secrets that are missing, scheduled for deletion, under an unconfigured key, or short of keys: naming keys, never values', async () => {
    mocks.secretsManager
      .on(DescribeSecretCommand, { SecretId: 'refund-relay/prod/optty' })
      .rejects(new SecretNotFound({ message: 'no such secret', $metadata: {} }));
    mocks.secretsManager.on(DescribeSecretCommand, { SecretId: 'refund-relay/prod/paypro' }).resolves({ DeletedDate: new Date('2026-11-28T00:00:00Z') });
    mocks.secretsManager
      .on(DescribeSecretCommand, { SecretId: 'refund-relay/prod/refundid' })
      .resolves({ KmsKeyId: 'arn:aws:kms:ap-southeast-2:482911735106:key/11111111-2222-3333-4444-555555555555' });
    const { apiSecret: _dropped, ...apace } = secrets.apace;
    secrets.apace = apace;
    secrets.addonPayments = { ...secrets.addonPayments, merchantPassword: 'too-short' };
    secrets.ap21 = { ...secrets.ap21, accessToken: 'an-access-token-too' };
    const { code, out } = await check();
    expect(code).toBe(1);
    expect(refusals(out)).toEqual([
      'secret refund-relay/prod/apace: apiSecret is missing: aws secretsmanager put-secret-value --secret-id refund-relay/prod/apace --secret-string file://apace.json (keys: README, Secrets)',
      'secret refund-relay/prod/addonPayments: merchantPassword is not valid (must be exactly 32 bytes (the AES-256 key)): aws secretsmanager put-secret-value --secret-id refund-relay/prod/addonPayments --secret-string file://addonPayments.json (keys: README, Secrets)',
      'secret refund-relay/prod/paypro: is scheduled for deletion (2026-11-28) and blocks its name: aws secretsmanager restore-secret --secret-id refund-relay/prod/paypro',
      'secret refund-relay/prod/optty: does not exist; the stage imports it: aws secretsmanager create-secret --name refund-relay/prod/optty --secret-string file://optty.json (keys: README, Secrets)',
      'secret refund-relay/prod/ap21: give either username/password or accessToken, not both: aws secretsmanager put-secret-value --secret-id refund-relay/prod/ap21 --secret-string file://ap21.json (keys: README, Secrets)',
      'secret refund-relay/prod/refundid: is encrypted with the customer-managed key arn:aws:kms:ap-southeast-2:482911735106:key/11111111-2222-3333-4444-555555555555: set providerSecretsKeyArn of stage prod to its ARN, or the functions cannot decrypt it',
    ]);
    // Every generated credential (the random ones; user names and merchant ids are not secret).
    const values: string[] = Object.values(secrets).flatMap((secret) =>
      Object.values(secret).flatMap((value): string[] => (typeof value === 'object' && value ? Object.values(value).map(String) : [String(value)])),
    );
    const credentials = values.filter((value) => value.length >= 16);
    expect(credentials.length).toBeGreaterThan(10);
    for (const value of credentials) expect(out).not.toContain(value);
    for (const value of ['too-short', 'an-access-token-too']) expect(out).not.toContain(value);
  });

  it('CONTROL: the same secrets pass once the key is configured and the values are complete', async () => {
    const keyArn = 'arn:aws:kms:ap-southeast-2:482911735106:key/11111111-2222-3333-4444-555555555555';
    mocks.secretsManager.on(DescribeSecretCommand, { SecretId: 'refund-relay/prod/refundid' }).resolves({ KmsKeyId: keyArn });
    expect(refusals((await check({ ...FILLED_PROD, providerSecretsKeyArn: keyArn })).out)).toEqual([]);
  });

  it("a created secret's name already taken before the first deploy, and asks for values after it", async () => {
    const dev: StageConfig = {
      ...FILLED_PROD,
      stage: 'dev',
      providerSecrets: 'create',
      removalPolicy: STAGES.dev.removalPolicy,
      tableDeletionProtection: false,
      customDomain: undefined,
    };
    delete (dev as { customDomain?: unknown }).customDomain;
    notDeployed('dev');
    mocks.secretsManager.on(DescribeSecretCommand).rejects(new SecretNotFound({ message: 'no such secret', $metadata: {} }));
    mocks.secretsManager.on(DescribeSecretCommand, { SecretId: 'refund-relay/dev/ap21' }).resolves({});
    expect(refusals((await check(dev)).out)).toEqual([
      "secret refund-relay/dev/ap21: exists already, so the stack cannot create it: delete it, or set providerSecrets 'import' for stage dev",
    ]);
    deployed({ EgressIps: '13.54.1.2,13.55.3.4' }, 'dev');
    mocks.secretsManager.on(DescribeSecretCommand).resolves({});
    mocks.secretsManager.on(GetSecretValueCommand).resolves({ SecretString: '{}' });
    const after = await check(dev);
    expect(refusals(after.out)).toEqual([]);
    expect(after.out).toContain(
      '   - secret refund-relay/dev/apace\n      publicId is missing; apiSecret is missing; callbackKeys is missing; callbackKeyId is missing',
    );
  });
});

describe('the preflight after a deploy', () => {
  it('says exactly which DNS record to create while the domain does not resolve, and refuses one that resolves elsewhere', async () => {
    const record = `${DOMAIN} CNAME ${API_TARGET}`;
    deployed({ EgressIps: '13.54.1.2,13.55.3.4', CustomDomainTarget: API_TARGET, CustomDomainDnsRecord: record });
    mocks.ec2.on(DescribeNatGatewaysCommand).resolves({ NatGateways: [] });
    dns = { [API_TARGET]: ['3.104.1.1', '3.104.2.2'] };
    const missing = await check();
    expect(missing.code).toBe(0);
    expect(missing.out).toContain(`   - DNS ${DOMAIN}\n      does not resolve: callback URLs fail until it does. Create: ${record}`);
    dns[DOMAIN] = ['52.1.1.1'];
    expect(refusals((await check()).out)).toEqual([`DNS ${DOMAIN}: resolves to 52.1.1.1, not to the API (${API_TARGET}: 3.104.1.1, 3.104.2.2)`]);
    dns[DOMAIN] = ['3.104.2.2'];
    expect((await check()).out).toContain(`✓ DNS ${DOMAIN}: resolves to the API (${API_TARGET})`);
  });
});
