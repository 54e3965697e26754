// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', '.local/', 'coverage/', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A leading underscore marks a value that is deliberately unused (a destructured-away key, an
      // argument an interface requires).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Methods that implement a Promise-returning port are written `async` even when this
      // implementation happens not to wait: a throw then becomes a rejection, as callers expect.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
      // Node's `createServer` and `process.on` take async listeners by design; their rejections are
      // handled inside each listener.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
    },
  },
  {
    // Shipping code: what the Lambda bundles and the CDK app load. The simulators, the local runtime,
    // the tools, the bench and the tests never ship, so nothing here imports them
    // (test/cdk/bundle-contents.test.ts checks the built bundles, dynamic imports included).
    files: ['lambdas/**/*.ts', 'lib/**/*.ts', 'bin/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)(simulators|local|tools|bench|test)(/|$)',
              message: 'simulators/, local/, tools/, bench/ and test/ do not ship: shipping code (lambdas/, lib/, bin/) must not import them.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // jest's asymmetric matchers (`expect.any`, `expect.objectContaining`) are typed `any`.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
);
