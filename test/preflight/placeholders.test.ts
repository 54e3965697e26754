import { STAGE_NAMES, STAGES, type StageConfig } from '../../lib/stage-config';
import { stageConfigProblems } from '../../lib/stage-validation';
import { documentationRange, placeholderFindings } from '../../tools/preflight/placeholders';
import { committedSources, runPreflight } from '../../tools/preflight/preflight';
import { FILLED_PROD, filledSources } from './fixtures';

const sources = committedSources();
const fills = (config: StageConfig, from = sources) => placeholderFindings(config, from).filter((finding) => finding.level === 'fill');
/** The line of lib/stage-config.ts that holds a literal. */
const lineOf = (literal: string) => sources.stageConfigText.split('\n').findIndex((line) => line.includes(`'${literal}'`)) + 1;

async function offline(argv: string[], deps: Parameters<typeof runPreflight>[2] = {}) {
  let out = '';
  let err = '';
  const code = await runPreflight(
    argv,
    { out: (text) => (out += `${text}\n`), err: (text) => (err += `${text}\n`) },
    { env: {}, home: '/nonexistent', ...deps },
  );
  return { code, out, err };
}

describe('the preflight on a fresh clone (no credentials)', () => {
  it('refuses prod, naming in one list every placeholder with its file, line and key', () => {
    expect(fills(STAGES.prod).map((finding) => finding.where)).toEqual([
      `lib/stage-config.ts:${lineOf('333333333333')} STAGES.prod.account`,
      `lib/stage-config.ts:${lineOf('https://retailapi.example.com/RetailAPI')} STAGES.prod.providerUrls.AP21_API_URL`,
      `lib/stage-config.ts:${lineOf('203.0.113.21')} STAGES.prod.ipAllowlists['/ap21/returns']`,
      `lib/stage-config.ts:${lineOf('refund-relay-prod-alarms@example.com')} STAGES.prod.alarmEmail`,
      `lib/stage-config.ts:${lineOf('eipalloc-00000000000000001')} STAGES.prod.egress.elasticIpAllocationIds`,
      `lib/stage-config.ts:${lineOf('eipalloc-00000000000000001')} STAGES.prod.egress.elasticIpAllocationIds`,
      `lib/stage-config.ts:${lineOf('refunds.example.com')} STAGES.prod.customDomain.domainName`,
      `lib/stage-config.ts:${lineOf('arn:aws:acm:ap-southeast-2:333333333333:certificate/00000000-0000-0000-0000-000000000000')} STAGES.prod.customDomain.certificateArn`,
      `lib/stage-config.ts:${lineOf('Z0000000000000000000')} STAGES.prod.customDomain.hostedZone`,
    ]);
    expect(lineOf('333333333333')).toBeGreaterThan(0);
  });

  it('CONTROL: the validation every synth runs accepts those same placeholders, so cdk synth keeps working offline', () => {
    for (const stage of STAGE_NAMES) expect(stageConfigProblems(STAGES[stage])).toEqual([]);
  });

  it.each(STAGE_NAMES)('refuses %s too, with the account, the allowlist placeholder and the alarm address among its findings', async (stage) => {
    const { code, out } = await offline(['--stage', stage]);
    expect(code).toBe(1);
    expect(out).toContain(`placeholder account ${STAGES[stage].account}`);
    expect(out).toContain('203.0.113.21 is in 203.0.113.0/24, TEST-NET-3');
    expect(out).toContain(`${STAGES[stage].alarmEmail} is a placeholder`);
    expect(out).toContain('Offline: no AWS credentials found');
    expect(out).toMatch(/NOT READY: \d+ to fill in or fix/);
    expect(out).toMatch(/Standing cost at list prices: \$\d+\.\d\d\/month/);
  });

  it('says which stages there are, and that a stage is required', async () => {
    expect(await offline(['--stage', 'qa'])).toMatchObject({ code: 1, err: 'unknown stage "qa": the stages are dev, staging, prod\n' });
    expect((await offline([])).err).toContain('which stage? --stage is required');
  });
});

describe('the preflight on a filled-in stage', () => {
  it('finds nothing left to fill in offline, and exits 0', async () => {
    expect(fills(FILLED_PROD, filledSources())).toEqual([]);
    const { code, out } = await offline(['--stage', 'prod'], { stages: { prod: FILLED_PROD }, sources: filledSources() });
    expect(code).toBe(0);
    expect(out).toContain('Nothing to fill in offline. Run again with credentials before deploying');
  });

  it('asks for the availability zones of a new account to be recorded in cdk.context.json', () => {
    const todos = placeholderFindings(FILLED_PROD, sources).filter((finding) => finding.level === 'todo');
    expect(todos.map((finding) => finding.where)).toContain('cdk.context.json "availability-zones:account=482911735106:region=ap-southeast-2"');
  });

  it('refuses a hand-typed egress IP where an allocation belongs', () => {
    const typed: StageConfig = { ...FILLED_PROD, egress: { ...FILLED_PROD.egress, elasticIpAllocationIds: ['13.54.1.2', 'eipalloc-0f9e8d7c6b5a40312'] } };
    expect(fills(typed, filledSources()).map((finding) => finding.message)).toEqual([
      'egress.elasticIpAllocationIds has the address "13.54.1.2": name its allocation (eipalloc-…); the stack reads the address from AWS',
    ]);
  });

  it('refuses documentation addresses and example domains wherever they are', () => {
    const careless: StageConfig = {
      ...FILLED_PROD,
      ipAllowlists: { ...FILLED_PROD.ipAllowlists, '/refundid/order': ['198.51.100.4'], '/ap21/returns': ['2001:db8::7'] },
      providerUrls: { ...FILLED_PROD.providerUrls, OPTTY_API_URL: 'https://optty.example.net' },
      alarmEmail: 'ops@shop.test',
    };
    expect(fills(careless, filledSources()).map((finding) => [finding.where, finding.message])).toEqual([
      ['lib/stage-config.ts STAGES.prod.providerUrls.OPTTY_API_URL', expect.stringMatching(/^https:\/\/optty.example.net is a placeholder host/)],
      ["lib/stage-config.ts STAGES.prod.ipAllowlists['/refundid/order']", expect.stringMatching(/^198.51.100.4 is in 198.51.100.0\/24, TEST-NET-2, reserved/)],
      ["lib/stage-config.ts STAGES.prod.ipAllowlists['/ap21/returns']", expect.stringMatching(/^2001:db8::7 is in 2001:db8::\/32, IPv6 documentation range/)],
      ['lib/stage-config.ts STAGES.prod.alarmEmail', expect.stringMatching(/^ops@shop.test is a placeholder: alarms would e-mail no one/)],
    ]);
  });
});

describe('documentation address ranges', () => {
  it.each([
    ['192.0.2.1', '192.0.2.0/24, TEST-NET-1'],
    ['198.51.100.255', '198.51.100.0/24, TEST-NET-2'],
    ['203.0.113.0/28', '203.0.113.0/24, TEST-NET-3'],
    ['203.0.0.0/16', '203.0.113.0/24, TEST-NET-3'],
    ['2001:db8:1::/48', '2001:db8::/32, IPv6 documentation range'],
  ])('%s is in (or covers) %s', (address, range) => {
    expect(documentationRange(address)).toBe(range);
  });

  it.each(['34.87.219.187', '203.0.114.1', '192.0.3.0/24', '2604:a880:400:d0::1843:7001', '2001:db9::1'])('%s is a real address', (address) => {
    expect(documentationRange(address)).toBeUndefined();
  });
});
