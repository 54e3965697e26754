import { existsSync } from 'node:fs';
import { join } from 'node:path';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { SLOW_FIRST } = require('./slow-first-sequencer.js') as { SLOW_FIRST: readonly string[] };

describe('the slow-first test sequencer', () => {
  it('names only test files that exist, so a rename does not quietly put a slow file last again', () => {
    const root = join(__dirname, '..', '..');
    expect(SLOW_FIRST.filter((file) => !existsSync(join(root, file)))).toEqual([]);
  });
});
