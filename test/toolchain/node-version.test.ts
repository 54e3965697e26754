import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const major = (version: string) => Number(/^v?(\d+)/.exec(version)?.[1]);

describe('the Node.js the tests run on', () => {
  it('is the major version of the Lambda runtime (nodejs22.x), as .nvmrc and engines say', () => {
    const functions = readFileSync(join(root, 'lib', 'functions.ts'), 'utf8');
    const lambdaMajor = major(/Runtime\.NODEJS_(\d+)_X/.exec(functions)?.[1] ?? '');
    const nvmrc = major(readFileSync(join(root, '.nvmrc'), 'utf8').trim());
    const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;

    expect(lambdaMajor).toBe(22);
    expect(nvmrc).toBe(lambdaMajor);
    expect(engines).toBe(`>=${lambdaMajor} <${lambdaMajor + 1}`);
    expect(major(process.versions.node)).toBe(lambdaMajor);
  });
});
