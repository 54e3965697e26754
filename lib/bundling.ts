import { join } from 'node:path';
import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import { Code } from 'aws-cdk-lib/aws-lambda';
import { buildSync, type BuildOptions } from 'esbuild';

export const FUNCTIONS_DIR = join(__dirname, '..', 'lambdas', 'functions');
const PROJECT_ROOT = join(__dirname, '..');

/** The file Lambda loads (`index.mjs`) and the export it calls. */
export const LAMBDA_HANDLER = 'index.handler';

/**
 * How every Lambda is bundled, by the local esbuild (no Docker), and what `npm run bench` builds to
 * measure bundle size and init. The AWS SDK goes into the bundle so the versions we test are the
 * versions that run. ES modules with code splitting: what an entry imports statically loads at
 * init; what it imports with `import()` (a provider's connector the dispatcher has no work for
 * yet, docs/design.md §6) is a separate chunk loaded on first use. The banner gives the bundled
 * CommonJS packages a `require` for Node's own modules.
 */
export const LAMBDA_ESBUILD: BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'esm',
  splitting: true,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  mainFields: ['module', 'main'],
  minify: true,
  // Stack traces keep function and class names; source maps would add ~1.5 MB per bundle and,
  // with --enable-source-maps, cost time on every logged error.
  keepNames: true,
  sourcemap: false,
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'error',
};

/** esbuild's options for one function's bundle, written to `outdir` as `index.mjs` plus its chunks. */
export function functionBuild(name: string, outdir: string): BuildOptions {
  return { ...LAMBDA_ESBUILD, entryPoints: { index: join(FUNCTIONS_DIR, `${name}.ts`) }, outdir };
}

/**
 * A function's code asset: bundled on this machine by esbuild when the stack is synthesized, the
 * asset's hash taken from the bundle itself. The image is never pulled: local bundling always
 * succeeds or throws.
 */
export function functionCode(name: string): Code {
  return Code.fromAsset(PROJECT_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      image: DockerImage.fromRegistry('refund-relay/local-esbuild-only'),
      local: {
        tryBundle(outputDir: string): boolean {
          buildSync(functionBuild(name, outputDir));
          return true;
        },
      },
    },
  });
}
