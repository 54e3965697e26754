/** Tests run TypeScript through ts-jest without type-checking (tsc runs first in `npm test`). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.[tj]sx?$': ['ts-jest', { tsconfig: { allowJs: true } }] },
  transformIgnorePatterns: ['/node_modules/(?!zod/)'],
  setupFiles: ['<rootDir>/test/support/env.ts'],
  testTimeout: 30000,
};
