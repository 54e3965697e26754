import { spawnSync } from 'node:child_process';
import { javaAvailable, startDynamoDbLocal } from '../../test/support/dynamodb-local';

/**
 * `npm test`'s last step: the store and race tests again, against DynamoDB Local (AWS's own
 * emulator) instead of dynalite, one instance for all of them (docs/design.md §2.1). Without Java it
 * says so and runs nothing. Extra arguments go to jest (e.g. one test file).
 */
const SUITES = ['test/store/', 'test/race/'];

async function main(): Promise<number> {
  if (!javaAvailable()) {
    console.log(
      'DynamoDB Local: SKIPPED — no java on this machine, so the store and race tests ran against dynalite only (install a Java 17 runtime to run them against DynamoDB Local too).',
    );
    return 0;
  }
  const started = Date.now();
  const dynamo = await startDynamoDbLocal();
  const args = process.argv.slice(2);
  console.log(`DynamoDB Local: serving on ${dynamo.endpoint} after ${Date.now() - started} ms; running ${(args.length ? args : SUITES).join(', ')} against it`);
  try {
    const jest = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), '--maxWorkers=1', ...(args.length ? args : SUITES)], {
      stdio: 'inherit',
      env: { ...process.env, TEST_DYNAMO: 'local', DYNAMODB_LOCAL_ENDPOINT: dynamo.endpoint },
    });
    console.log(`DynamoDB Local: ${jest.status === 0 ? 'passed' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return jest.status ?? 1;
  } finally {
    await dynamo.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('DynamoDB Local: could not run:', error);
    process.exit(1);
  },
);
