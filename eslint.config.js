// The linter: typescript-eslint's recommended rules on every TypeScript file, plus the house rule that
// workflow code imports only the workflow SDK, the pure core and activity *types* (docs/architecture.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.state/', 'test/output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
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
