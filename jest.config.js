/** Tests run TypeScript through ts-jest without type-checking (tsc runs first in `npm test`). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.[tj]sx?$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', moduleResolution: 'node10' } }] },
  // `import('./x.js')` is how TypeScript (nodenext) spells a lazily loaded module of ours, x.ts.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transformIgnorePatterns: ['/node_modules/(?!zod/)'],
  setupFiles: ['<rootDir>/test/support/env.ts'],
  testTimeout: 30000,
  // Jest's default on two cores is one worker (cores − 1); most tests wait on loopback HTTP and
  // dynalite, so two workers finish the suite in ~2 min instead of ~4 (measured on this machine).
  maxWorkers: 2,
  // The slowest files first even without Jest's timing cache (a fresh clone): see the sequencer.
  testSequencer: '<rootDir>/test/support/slow-first-sequencer.js',
};
