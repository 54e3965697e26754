import { SECRET_NAMES } from '../../lambdas/providers/registry';
import { STAGES } from '../../lib/stage-config';
import { generateLocalSecrets } from '../../local/secrets-file';
import type { AwsAccount } from '../../tools/preflight/account';
import { runDeploy } from '../../tools/preflight/deploy';
import { FILLED_PROD, filledSources } from './fixtures';

/** An account where everything the filled-in prod stage names exists and is healthy. */
function healthyAccount(accountId: string): AwsAccount {
  const secrets = generateLocalSecrets();
  return {
    callerAccount: async () => accountId,
    isBootstrapped: async () => true,
    lambdaConcurrency: async () => ({ limit: 1000, unreserved: 1000 }),
    elasticIp: async (allocationId) => ({ publicIp: allocationId.endsWith('8') ? '13.54.1.2' : '13.55.3.4', domain: 'vpc' }),
    certificate: async () => ({ status: 'ISSUED', domainNames: [FILLED_PROD.customDomain!.domainName], validationRecords: [] }),
    hostedZone: async () => ({ name: 'acme-apparel.com.au.', isPrivate: false }),
    recordTypes: async () => [],
    secret: async (name) => ({ value: async () => secrets[SECRET_NAMES.find((secret) => name.endsWith(`/${secret}`))!] }),
    stackOutputs: async () => undefined,
    resolve: async () => [],
  };
}

async function deploy(argv: string[], stages = { prod: FILLED_PROD }, accountId = FILLED_PROD.account) {
  let out = '';
  let err = '';
  const runs: [string, readonly string[]][] = [];
  const code = await runDeploy(
    argv,
    { out: (text) => (out += `${text}\n`), err: (text) => (err += `${text}\n`) },
    {
      stages,
      sources: filledSources(),
      env: {},
      home: '/nonexistent',
      account: () => healthyAccount(accountId),
      run: async (command, args) => {
        runs.push([command, args]);
        return 0;
      },
    },
  );
  return { code, out, err, runs };
}

describe('npm run deploy -- --stage <s>', () => {
  it('runs the preflight with credentials first, then cdk deploy for the stage with the options given after --', async () => {
    const { code, out, runs } = await deploy(['--stage', 'prod', '--', '--require-approval', 'broadening']);
    expect(out).toContain('READY: npm run deploy -- --stage prod');
    expect(runs).toEqual([['cdk', ['deploy', '-c', 'stage=prod', '--require-approval', 'broadening']]]);
    expect(code).toBe(0);
  });

  it('deploys nothing while the preflight finds anything to fill in or fix', async () => {
    const fresh = await deploy(['--stage', 'prod'], { prod: STAGES.prod }, STAGES.prod.account);
    expect(fresh.runs).toEqual([]);
    expect(fresh.code).toBe(1);
    expect(fresh.err).toMatch(/Not deploying stage prod: the preflight found \d+ to fill in or fix\./);
    expect(fresh.out).toContain('placeholder account 333333333333');
    const wrongAccount = await deploy(['--stage', 'prod'], { prod: FILLED_PROD }, '999999999990');
    expect(wrongAccount.runs).toEqual([]);
    expect(wrongAccount.out).toContain('they are for account 999999999990, but stage prod deploys to 482911735106');
  });

  it('needs a stage', async () => {
    const { code, err, runs } = await deploy([]);
    expect([code, runs]).toEqual([1, []]);
    expect(err).toContain('which stage? --stage is required');
  });
});
