// Lint guards what comments cannot: promises are awaited (or explicitly voided), and workflow
// code, which Temporal replays, imports nothing that does I/O or depends on the machine.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tools/**', 'data/**', 'coverage/**', '**/*.js', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
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
              regex: '^(?!(@temporalio/workflow|@temporalio/common)$|\\./)',
              allowTypeImports: true,
              message:
                'workflows/ is replayed deterministically: import only @temporalio/workflow, @temporalio/common and other workflow modules; types from elsewhere with `import type`.',
            },
          ],
        },
      ],
    },
  },
);
