import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { STAGE_NAMES } from '../../lib/stage-config';
import { preflight, renderReport, type PreflightDeps, type PreflightIo } from './preflight';

export const DEPLOY_USAGE = `refund-relay deploy: the preflight, then cdk deploy

  npm run deploy -- --stage <${STAGE_NAMES.join('|')}> [-- <cdk deploy options>]

The preflight runs first, with your AWS credentials; if anything is left to fill in or fix, nothing
is deployed. Then: cdk deploy -c stage=<s> <options>.`;

/** Runs a command with the terminal attached; resolves with its exit code. */
export type Runner = (command: string, args: readonly string[]) => Promise<number>;

const runAttached: Runner = (command, args) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });

export async function runDeploy(argv: readonly string[], io: PreflightIo, deps: PreflightDeps & { run?: Runner } = {}): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { stage: { type: 'string' } }, strict: true, allowPositionals: true, tokens: true });
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${DEPLOY_USAGE}`);
    return 1;
  }
  const { stage } = parsed.values;
  if (!stage) {
    io.err(`which stage? --stage is required\n\n${DEPLOY_USAGE}`);
    return 1;
  }
  const checked = await preflight(stage, 'yes', deps);
  io.out(renderReport(checked));
  if (!checked.ready) {
    io.err(`\nNot deploying stage ${stage}: the preflight found ${checked.findings.filter((finding) => finding.level === 'fill').length} to fill in or fix.`);
    return 1;
  }
  const cdkArgs = ['deploy', '-c', `stage=${stage}`, ...parsed.positionals];
  io.out(`\ncdk ${cdkArgs.join(' ')}`);
  return (deps.run ?? runAttached)('cdk', cdkArgs);
}
