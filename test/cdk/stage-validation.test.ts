import { App, RemovalPolicy } from 'aws-cdk-lib';
import { defineApp } from '../../lib/app';
import { STAGE_NAMES, STAGES, type StageConfig } from '../../lib/stage-config';
import { StageConfigError, stageConfig, stageConfigProblems } from '../../lib/stage-validation';
import { COMMITTED_CONTEXT } from './support';

describe('stage configuration', () => {
  it.each(STAGE_NAMES)('accepts the committed %s stage and has its availability zones in cdk.context.json', (stage) => {
    const config = stageConfig(stage);
    expect(stageConfigProblems(config)).toEqual([]);
    expect(COMMITTED_CONTEXT[`availability-zones:account=${config.account}:region=${config.region}`]).toEqual(
      expect.arrayContaining([expect.stringMatching(/^[a-z]{2}-/)]),
    );
  });

  it('refuses an unknown stage, naming the stages there are', () => {
    expect(() => defineApp(new App({ context: { stage: 'qa' } }))).toThrow(
      new StageConfigError('unknown stage "qa": choose one with -c stage=<dev|staging|prod>'),
    );
  });

  it('refuses to synthesize without a stage, naming the stages there are', () => {
    expect(() => defineApp(new App())).toThrow(new StageConfigError('no stage was given: choose one with -c stage=<dev|staging|prod>'));
  });

  it('reports every mistake of a stage at once', () => {
    const broken: StageConfig = {
      ...STAGES.staging,
      account: '1234',
      providerUrls: { ...STAGES.staging.providerUrls, PAYPRO_API_URL: 'http://store.payproglobal.com', OPTTY_API_URL: 'https://api.optty.com/' },
      ipAllowlists: { '/refundid/order': ['34.87.219.187', '34.87.219'], '/providers/paypro/ipn': [] },
      egress: { availabilityZones: 2, natGateways: 3, elasticIpAllocationIds: ['eip-123', '203.0.113.9'], interfaceEndpoints: ['sqs', 'sqs'] },
      alarmEmail: 'ops',
      customDomain: {
        domainName: 'refunds.example.com',
        certificateArn: 'arn:aws:acm:us-east-1:222222222222:certificate/00000000-0000-0000-0000-000000000000',
      },
    };
    expect(() => stageConfig('staging', { staging: broken })).toThrow(StageConfigError);
    expect(stageConfigProblems(broken)).toEqual([
      'account "1234" must be 12 digits',
      'providerUrls.PAYPRO_API_URL must use https',
      'providerUrls.OPTTY_API_URL must be a base URL without a trailing slash, query or fragment',
      'ipAllowlists["/refundid/order"] has "34.87.219", not an IP address or CIDR',
      'ipAllowlists["/providers/paypro/ipn"] is empty; remove the entry to leave the path open',
      'egress.natGateways must be between 1 and egress.availabilityZones (2)',
      'egress.elasticIpAllocationIds lists 2 allocations for 3 NAT gateways (one Elastic IP each)',
      'egress.elasticIpAllocationIds has "eip-123", not an eipalloc- id',
      'egress.elasticIpAllocationIds has the address "203.0.113.9": name its allocation (eipalloc-…); the stack reads the address from AWS',
      'egress.interfaceEndpoints repeats a service',
      'alarmEmail "ops" is not an e-mail address',
      'customDomain.certificateArn must be in the stage region (regional endpoint)',
    ]);
  });

  it('accepts CIDR ranges and IPv6 addresses in allowlists', () => {
    const config: StageConfig = { ...STAGES.dev, ipAllowlists: { '/ap21/returns': ['203.0.113.0/28', '2604:a880:400:d0::/64', '198.51.100.7'] } };
    expect(stageConfigProblems(config)).toEqual([]);
    expect(stageConfigProblems({ ...config, ipAllowlists: { '/ap21/returns': ['203.0.113.0/33'] } })).toEqual([
      'ipAllowlists["/ap21/returns"] has "203.0.113.0/33", not an IP address or CIDR',
    ]);
  });

  it('refuses a receipt rule the poller would refuse to start with (docs/design.md §2.9)', () => {
    const ap21 = STAGES.dev.providerSettings.ap21!;
    const config = (settings: Record<string, string>): StageConfig => ({
      ...STAGES.dev,
      providerSettings: { ...STAGES.dev.providerSettings, ap21: { ...ap21, ...settings } },
    });
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: 'reversal,apace', AP21_RECEIPT_WAIT_DAYS: '14' }))).toEqual([]);
    // Card reversals held, Apace offers not: an Apace refund's fallback to the card waits for the receipt itself.
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: 'addon_payments' }))).toEqual([]);
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: 'refundid', AP21_RECEIPT_WAIT_DAYS: '0' }))).toEqual([
      expect.stringMatching(/^providerSettings\.ap21\.AP21_PAY_ON_RECEIPT: refundid cannot pay on receipt/),
      'providerSettings.ap21.AP21_RECEIPT_WAIT_DAYS "0" must be a whole number of days from 1 to 365',
    ]);
  });

  it('refuses a receipt wait no longer than the Apace offer where card fallbacks wait for the receipt (docs/design.md §2.9)', () => {
    const config = (
      ap21: Record<string, string>,
      apace: Record<string, string> = {},
      routingPolicy: StageConfig['routingPolicy'] = 'apace_first',
    ): StageConfig => ({
      ...STAGES.dev,
      routingPolicy,
      providerSettings: {
        ...STAGES.dev.providerSettings,
        ap21: { ...STAGES.dev.providerSettings.ap21!, ...ap21 },
        apace: { ...STAGES.dev.providerSettings.apace!, ...apace },
      },
    });
    const refusal = (wait: number, offer: number, held: string) =>
      `providerSettings.ap21.AP21_RECEIPT_WAIT_DAYS (${wait}) must be longer than the Apace offer's APACE_OFFER_DAYS (${offer}): ` +
      `this stage pays Apace when the return is seen but holds card reversals (${held}) until Ap21 shows it received, ` +
      'so an Apace refund whose offer expires falls back to a card that waits for the receipt from when the return was seen, and would ' +
      'land in manual review at once (docs/design.md §2.9)';
    // EPG cards held until receipt, Apace paid when seen: the fallback's wait must outlast the offer.
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: 'addon_payments', AP21_RECEIPT_WAIT_DAYS: '10' }))).toEqual([refusal(10, 10, 'addon_payments')]);
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: 'reversal', AP21_RECEIPT_WAIT_DAYS: '14' }, { APACE_OFFER_DAYS: '21' }))).toEqual([
      refusal(14, 21, 'addon_payments, paypro, optty'),
    ]);
    // The defaults (30 days against Apace's 10) and a wait one day past the offer are fine.
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: 'addon_payments' }))).toEqual([]);
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: 'addon_payments', AP21_RECEIPT_WAIT_DAYS: '11' }))).toEqual([]);
    // No fallback waits: Apace held too (the goods are back before any offer), nothing held, or no Apace at all.
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: 'apace,addon_payments', AP21_RECEIPT_WAIT_DAYS: '5' }))).toEqual([]);
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: '', AP21_RECEIPT_WAIT_DAYS: '5' }))).toEqual([]);
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: 'addon_payments', AP21_RECEIPT_WAIT_DAYS: '5' }, {}, 'reversal_only'))).toEqual([]);
    // A synth of such a stage stops with the reason.
    expect(() => stageConfig('dev', { dev: config({ AP21_PAY_ON_RECEIPT: 'addon_payments', AP21_RECEIPT_WAIT_DAYS: '7' }) })).toThrow(
      /AP21_RECEIPT_WAIT_DAYS \(7\) must be longer than the Apace offer's APACE_OFFER_DAYS \(10\)/,
    );
    expect(stageConfigProblems(config({ AP21_PAY_ON_RECEIPT: 'addon_payments' }, { APACE_OFFER_DAYS: 'ten' }))).toEqual([
      expect.stringMatching(/^providerSettings\.apace\.APACE_OFFER_DAYS: /),
    ]);
  });

  it('refuses named secrets that would outlive the stack and block its next deploy, and a hosted zone the domain is not in', () => {
    const config: StageConfig = {
      ...STAGES.dev,
      removalPolicy: RemovalPolicy.RETAIN,
      providerSecretsKeyArn: 'arn:aws:kms:ap-southeast-2:111111111111:key/1234',
      customDomain: {
        domainName: 'refunds.shop.example.net',
        certificateArn: 'arn:aws:acm:ap-southeast-2:111111111111:certificate/12345678-1234-1234-1234-123456789012',
        hostedZone: { id: 'not-a-zone', name: 'example.org' },
      },
    };
    expect(stageConfigProblems(config)).toEqual([
      'customDomain.hostedZone.id "not-a-zone" is not a Route 53 hosted zone id',
      'customDomain.domainName "refunds.shop.example.net" is not in customDomain.hostedZone.name "example.org"',
      "providerSecrets 'create' with removalPolicy RETAIN: the retained secrets keep their names after cdk destroy and make the next deploy fail; use 'import'",
      "providerSecretsKeyArn applies to imported secrets (providerSecrets 'import')",
      'providerSecretsKeyArn is not a KMS key ARN',
    ]);
  });

  it('refuses a production stage that could lose its data, its egress IPs or its callback host', () => {
    const { elasticIpAllocationIds: _, ...egress } = STAGES.prod.egress;
    const { customDomain: __, ...withoutDomain } = STAGES.prod;
    const careless: StageConfig = { ...withoutDomain, removalPolicy: RemovalPolicy.DESTROY, tableDeletionProtection: false, egress };
    expect(stageConfigProblems(careless)).toEqual([
      'prod must retain its data (removalPolicy RETAIN)',
      'prod must protect its table from deletion',
      'prod must pin pre-allocated Elastic IPs so the egress IPs survive a rebuild',
      'prod needs a customDomain: callback URLs handed to Apace must survive a rebuild',
    ]);
  });

  it('refuses a stage listed under another name', () => {
    expect(() => stageConfig('staging', { staging: STAGES.dev })).toThrow('stage is "dev" but is listed as "staging"');
  });
});
