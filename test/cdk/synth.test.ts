import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { defineApp } from '../../lib/app';
import { FUNCTIONS } from '../../lib/function-registry';
import { CDK_JSON_CONTEXT, COMMITTED_CONTEXT, resourcesOfType } from './support';

/**
 * What `npx cdk synth -c stage=prod` does, in process: the real app with cdk-nag as a plugin,
 * CloudFormation's own schema validation (errors, as cdk.json asks) and esbuild bundling.
 */
describe('synthesizing the prod stage as the CLI does', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'refund-relay-synth-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('passes CloudFormation validation and cdk-nag, and bundles the AWS SDK into each function', () => {
    const app = new App({ outdir, context: { ...CDK_JSON_CONTEXT, ...COMMITTED_CONTEXT, stage: 'prod' } });
    const stack = defineApp(app);
    const assembly = app.synth();

    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as { pluginReports: { violations: unknown[] }[] };
    expect(report.pluginReports.flatMap((plugin) => plugin.violations)).toEqual([]);
    expect(process.exitCode ?? 0).toBe(0);
    expect(assembly.getStackByName(stack.stackName).messages.filter((message) => String(message.level) === 'error')).toEqual([]);

    // Ours, not aws-cdk's own deploy-time helpers (the Elastic IP address lookup, the default security group's lock-down).
    const functions = resourcesOfType(
      Template.fromJSON(assembly.getStackByName(stack.stackName).template as Record<string, unknown>).toJSON().Resources,
      'AWS::Lambda::Function',
    ).filter(([, fn]) => String(fn.Properties?.Description).startsWith('refund-relay prod '));
    expect(functions).toHaveLength(FUNCTIONS.length);
    for (const [, fn] of functions) {
      const key = String((fn.Properties?.Code as { S3Key: string }).S3Key).replace(/\.zip$/, '');
      const asset = join(outdir, `asset.${key}`);
      // The entry Lambda loads (handler index.handler) and the chunks it imports, now or on first use.
      const files = readdirSync(asset, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.mjs'));
      expect(files).toContain('index.mjs');
      const bundle = files.map((file) => readFileSync(join(asset, file), 'utf8')).join('\n');
      const imported = [...bundle.matchAll(/(?:require\(|import\(|from)\s*"([^"]+)"/g)].map((match) => match[1]!);
      // Node built-ins and the bundle's own chunks only; the CRT signer is an optional require the SDK wraps in try/catch.
      expect(imported.filter((name) => !name.startsWith('node:') && !name.startsWith('./') && name !== '@aws-sdk/signature-v4-crt')).toEqual([]);
      const definition = FUNCTIONS.find((candidate) => fn.Properties?.Description === `refund-relay prod ${candidate.name}`)!;
      if (definition.table !== 'none') expect(bundle).toContain('DynamoDBClient');
      if (definition.secrets.length > 0) expect(bundle).toContain('SecretsManagerClient');
    }
  });
});
