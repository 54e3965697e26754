import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { FUNCTIONS } from '../lib/function-registry';
import { LAMBDA_ESBUILD, functionBuild } from '../lib/bundling';
import { median } from './support';

const ROOT = resolve(__dirname, '..');
const INIT_RUNS = 15;
/** Loads discarded first, so the first bundle measured does not pay for a cold file cache. */
const INIT_WARM_UPS = 1;

/** What a bundle loads when Lambda starts it: its entry and every chunk imported statically, never the chunks behind `import()`. */
export function initOutputs(metafile: Metafile, entry: string): string[] {
  const loaded = new Set<string>();
  const visit = (path: string) => {
    if (loaded.has(path) || !metafile.outputs[path]) return;
    loaded.add(path);
    for (const { path: imported, kind } of metafile.outputs[path].imports) if (kind === 'import-statement') visit(imported);
  };
  visit(entry);
  return [...loaded];
}

export interface SdkUse {
  /** Package → its client class and the commands the bundle contains. */
  readonly packages: ReadonlyMap<string, { client?: string; commands: Set<string> }>;
}

export interface BundleResult {
  readonly name: string;
  /** What Lambda loads at init: the entry and its static chunks. */
  readonly bytes: number;
  /** Chunks loaded only on first use (`import()`), e.g. a provider's connector. */
  readonly lazyBytes: number;
  /** Of `bytes`: zod's, and refund-relay's own code (the rest is the SDK, as in the baseline). */
  readonly zodBytes: number;
  readonly ownBytes: number;
  readonly baselineBytes: number;
  readonly initMs: number;
  readonly baselineInitMs: number;
  /** Median of the ratios of back-to-back pairs of loads: steadier than a ratio of medians on a busy machine. */
  readonly initRatio: number;
  /** What the clients-only baseline holds, e.g. `client-dynamodb(UpdateItem…)`. */
  readonly sdk: string;
}

const SDK_FILE = /node_modules\/@aws-sdk\/(client-[a-z0-9-]+|lib-dynamodb)\/dist-(?:es|cjs)\/(.*)$/;

/** The SDK clients and commands that made it into a bundle's `outputs` (files contributing bytes, per the metafile; all outputs by default). */
export function sdkUse(metafile: Metafile, outputs: readonly string[] = Object.keys(metafile.outputs)): SdkUse {
  const packages = new Map<string, { client?: string; commands: Set<string> }>();
  for (const output of outputs.map((path) => metafile.outputs[path]!)) {
    for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
      const match = SDK_FILE.exec(path);
      if (!match || bytesInOutput === 0) continue;
      const [, pkg, file] = match as unknown as [string, string, string];
      const entry = packages.get(pkg) ?? { commands: new Set<string>() };
      const command = /^commands\/(\w+Command)\.js$/.exec(file);
      if (command) entry.commands.add(command[1]!);
      const client = /^(\w+Client)\.js$/.exec(file);
      if (client) entry.client = client[1]!;
      packages.set(pkg, entry);
    }
  }
  return { packages };
}

/** Bytes at init that come from zod, and from refund-relay's own files (outside node_modules). */
export function initParts(metafile: Metafile, outputs: readonly string[]): { zodBytes: number; ownBytes: number } {
  let zodBytes = 0;
  let ownBytes = 0;
  for (const output of outputs)
    for (const [path, { bytesInOutput }] of Object.entries(metafile.outputs[output]!.inputs)) {
      if (path.includes('node_modules/zod/')) zodBytes += bytesInOutput;
      else if (!path.includes('node_modules/')) ownBytes += bytesInOutput;
    }
  return { zodBytes, ownBytes };
}

/** A module that loads exactly those SDK clients and commands and builds the clients at load, as the Lambda's init does. */
export function clientsOnlyEntry(use: SdkUse): string {
  const imports = new Map<string, Set<string>>();
  const add = (pkg: string, name: string) => imports.set(pkg, (imports.get(pkg) ?? new Set<string>()).add(name));
  const built: string[] = [];
  const wrapsDynamo = Boolean(use.packages.get('lib-dynamodb')?.client);
  for (const [pkg, { client, commands }] of use.packages) {
    for (const command of commands) add(pkg, command);
    if (!client) continue;
    add(pkg, client);
    if (pkg === 'lib-dynamodb') {
      add('client-dynamodb', 'DynamoDBClient');
      built.push(`${client}.from(new DynamoDBClient({}))`);
    } else if (!(pkg === 'client-dynamodb' && wrapsDynamo)) {
      built.push(`new ${client}({})`);
    }
  }
  // lib-dynamodb's commands share their names with client-dynamodb's: each command gets its package's alias.
  const alias = (pkg: string, name: string) => (name.endsWith('Command') ? `${pkg.replace(/-/g, '_')}_${name}` : name);
  const commands = [...use.packages].flatMap(([pkg, { commands: names }]) => [...names].map((name) => alias(pkg, name))).sort();
  return [
    ...[...imports].map(
      ([pkg, names]) =>
        `import { ${[...names]
          .sort()
          .map((name) => (alias(pkg, name) === name ? name : `${name} as ${alias(pkg, name)}`))
          .join(', ')} } from '@aws-sdk/${pkg}';`,
    ),
    `export const clients = [${built.join(', ')}];`,
    `export const commands = [${commands.join(', ')}];`,
  ].join('\n');
}

function describeUse(use: SdkUse): string {
  if (use.packages.size === 0) return '(no SDK client)';
  return [...use.packages]
    .map(
      ([pkg, { commands }]) =>
        `${pkg}(${[...commands]
          .map((command) => command.replace(/Command$/, ''))
          .sort()
          .join(',')})`,
    )
    .join(' ');
}

async function initTime(file: string, env: NodeJS.ProcessEnv): Promise<number> {
  const script = `const t=performance.now();import(${JSON.stringify(pathToFileURL(file).href)}).then(()=>process.stdout.write(String(performance.now()-t)))`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { env, timeout: 20_000 });
  return Number(stdout);
}

/**
 * Builds every Lambda of the function registry as CDK does, and beside each a bundle of only the
 * SDK clients it contains (same esbuild settings); compares their sizes and their module-load times
 * (a fresh node per load, alternating, median of several runs).
 */
export async function benchBundles(initEnv: NodeJS.ProcessEnv): Promise<BundleResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'refund-relay-bench-'));
  try {
    const built: {
      name: string;
      outfile: string;
      baselineFile: string;
      bytes: number;
      baselineBytes: number;
      lazyBytes: number;
      zodBytes: number;
      ownBytes: number;
      sdk: string;
    }[] = [];
    for (const { name } of FUNCTIONS) {
      const outdir = join(dir, name);
      const { metafile } = await build({ ...functionBuild(name, outdir), metafile: true });
      const outfile = join(outdir, 'index.mjs');
      const atInit = initOutputs(metafile, relative(process.cwd(), outfile));
      const use = sdkUse(metafile, atInit);
      const baselineEntry = join(dir, `${name}.clients-entry.mjs`);
      await writeFile(baselineEntry, clientsOnlyEntry(use));
      const baselineDir = join(dir, `${name}.clients`);
      const baseline = await build({
        ...LAMBDA_ESBUILD,
        entryPoints: { index: baselineEntry },
        outdir: baselineDir,
        metafile: true,
        nodePaths: [join(ROOT, 'node_modules')],
      });
      const baselineFile = join(baselineDir, 'index.mjs');
      const bytesOf = (meta: Metafile, paths: readonly string[]) => paths.reduce((sum, path) => sum + meta.outputs[path]!.bytes, 0);
      const bytes = bytesOf(metafile, atInit);
      const baselineBytes = bytesOf(baseline.metafile, initOutputs(baseline.metafile, relative(process.cwd(), baselineFile)));
      const lazyBytes = bytesOf(metafile, Object.keys(metafile.outputs)) - bytes;
      built.push({ name, outfile, baselineFile, bytes, baselineBytes, lazyBytes, ...initParts(metafile, atInit), sdk: describeUse(use) });
    }
    // Every file loaded once first, so no bundle is measured against a cold file cache.
    for (let run = 0; run < INIT_WARM_UPS; run++)
      for (const bundle of built) for (const file of [bundle.outfile, bundle.baselineFile]) await initTime(file, initEnv);
    const results: BundleResult[] = [];
    for (const { outfile, baselineFile, ...bundle } of built) {
      const initSamples: number[] = [];
      const baselineSamples: number[] = [];
      const pairRatios: number[] = [];
      for (let run = 0; run < INIT_RUNS; run++) {
        // Each pair runs back to back, in alternating order: load from other processes hits both alike.
        let own: number;
        let clientsOnly: number;
        if (run % 2 === 0) {
          own = await initTime(outfile, initEnv);
          clientsOnly = await initTime(baselineFile, initEnv);
        } else {
          clientsOnly = await initTime(baselineFile, initEnv);
          own = await initTime(outfile, initEnv);
        }
        initSamples.push(own);
        baselineSamples.push(clientsOnly);
        pairRatios.push(own / clientsOnly);
      }
      results.push({ ...bundle, initMs: median(initSamples), baselineInitMs: median(baselineSamples), initRatio: median(pairRatios) });
    }
    return results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
