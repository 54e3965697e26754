import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { applyLocalEnvironment, localSettings } from '../../local/environment';
import { FUNCTIONS } from '../../lib/function-registry';
import { FUNCTIONS_DIR, LAMBDA_ESBUILD } from '../../lib/bundling';

/**
 * What each Lambda ships: every source file its bundle holds, loaded at init or on first use. The
 * simulators, the local runtime, the operator tools, the bench and the tests are not production
 * code; none of them may reach a function's bundle through an import.
 */
const NOT_SHIPPED = [/^(simulators|local|tools|bench|test)\//, /(^|\/)simulator[^/]*\.ts$/];

/** Source files (repository-relative) in each entry's outputs, following every import, static or dynamic. */
function sourcesPerEntry(metafile: Metafile): Map<string, Set<string>> {
  const perEntry = new Map<string, Set<string>>();
  for (const [path, output] of Object.entries(metafile.outputs)) {
    // A lazily imported module is an entry point of its own too; only the functions' own entries count here.
    if (!output.entryPoint?.startsWith('lambdas/functions/')) continue;
    const seen = new Set<string>();
    const sources = new Set<string>();
    const visit = (out: string) => {
      if (seen.has(out) || !metafile.outputs[out]) return;
      seen.add(out);
      for (const input of Object.keys(metafile.outputs[out].inputs)) if (!input.includes('node_modules/')) sources.add(input);
      for (const { path: imported } of metafile.outputs[out].imports) visit(imported);
    };
    visit(path);
    perEntry.set(output.entryPoint.replace(/^.*lambdas\/functions\//, '').replace(/\.ts$/, ''), sources);
  }
  return perEntry;
}

let perEntry: Map<string, Set<string>>;
let outdir: string;
beforeAll(async () => {
  outdir = await mkdtemp(join(tmpdir(), 'refund-relay-bundles-'));
  const entryPoints = Object.fromEntries(FUNCTIONS.map(({ name }) => [name, `${FUNCTIONS_DIR}/${name}.ts`]));
  const { metafile } = await build({ ...LAMBDA_ESBUILD, entryPoints, outdir, metafile: true });
  perEntry = sourcesPerEntry(metafile);
});
afterAll(() => rm(outdir, { recursive: true, force: true }));

it('builds every function of the registry', () => {
  expect([...perEntry.keys()].sort()).toEqual(FUNCTIONS.map(({ name }) => name).sort());
});

it.each(FUNCTIONS.map(({ name }) => name))('%s ships no simulator, local runtime, tool, bench or test code', (name) => {
  const sources = [...perEntry.get(name)!];
  expect(sources.some((source) => source.startsWith('lambdas/'))).toBe(true);
  expect(sources.filter((source) => NOT_SHIPPED.some((pattern) => pattern.test(source)))).toEqual([]);
});

/** The local runtime's variables (the names Lambda's environment uses), and the queue the sweeper rings. */
function lambdaLikeEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DISPATCH_QUEUE_URL: 'https://sqs.ap-southeast-2.amazonaws.com/000000000000/dispatch' };
  applyLocalEnvironment(localSettings({}), env);
  return { ...env, AWS_REGION: 'ap-southeast-2', AWS_ACCESS_KEY_ID: 'bundle-test', AWS_SECRET_ACCESS_KEY: 'bundle-test' };
}

it.each(FUNCTIONS.map(({ name }) => name))('%s loads as an ES module in a node of its own and exports its handler', async (name) => {
  const script = `const m = await import(${JSON.stringify(pathToFileURL(join(outdir, `${name}.mjs`)).href)}); process.stdout.write(typeof m.handler);`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: lambdaLikeEnvironment(), timeout: 20_000 });
  expect(stdout).toBe('function');
});
