// The linter: typescript-eslint's recommended rules on every TypeScript file, plus the house rule that
// workflow code imports only the workflow SDK, the pure core and activity *types* (docs/architecture.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'dist.next/', 'dist.old/', '.state/', 'test/output/'] },
  { files: ['**/*.js'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Errors thrown from activities become Temporal failures, cause chain included. A library's cause
      // can carry a URL with credentials (webhooks, token endpoints), so our errors carry only the
      // message we write; the rule that demands `{ cause }` is off on purpose.
      'preserve-caught-error': 'off',
      // Escape and control characters in regular expressions are deliberate (ANSI colours, input checks).
      'no-control-regex': 'off',
    },
  },
  // Tests poke at JSON records and error shapes; `any` there is the honest type.
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!@temporalio/workflow$|@temporalio/common$|\\.\\./core/|\\./|\\.\\./activities/)',
              message: 'Workflow code imports only @temporalio/workflow, the pure core/ and activity types.',
            },
            {
              regex: '^\\.\\./activities/',
              allowTypeImports: true,
              message: 'Workflow code imports activity types only (import type), never activity code.',
            },
          ],
        },
      ],
    },
  },
);
