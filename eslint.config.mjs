// Lint guards what comments cannot: promises are awaited (or explicitly voided); workflow
// code, which Temporal replays, imports nothing that does I/O or depends on the machine; and no
// module imports a layer above its own (docs/architecture.md's table), and no modules import each
// other in a circle.
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** A relative import of any of these folders. */
const folders = (...names) => `^\\.{1,2}/(.*/)?(${names.join('|')})(/|$)`;
/** One rule per folder (a later rule for the same files would replace an earlier one): each pattern a `{ regex, message, allowTypeImports? }`. */
const layer = (files, ...patterns) => ({ files, rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] } });

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tools/**', 'data/**', 'coverage/**', '**/*.js', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, 'import-x': importX },
    settings: { ...importX.flatConfigs.typescript.settings, 'import-x/resolver': undefined, 'import-x/resolver-next': [createTypeScriptImportResolver()] },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      // A circle of value imports (the rule does not follow `import type`; madge found none of those either).
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  layer(['src/contracts/**/*.ts'], { regex: '^(?!\\./)', message: 'src/contracts/ holds the shapes passed between layers: it imports nothing but other contracts.' }),
  layer(['src/fhir/**/*.ts'], {
    regex: folders('http', 'temporal', 'commands', 'workflows', 'activities', 'search-runner', 'import', 'store'),
    message: 'src/fhir/ is pure FHIR logic: it imports contracts and output/file-keys, nothing that runs I/O; the store imports it, not the other way (a writer it is handed is typed here).',
  }),
  layer(['src/views/**/*.ts'], {
    regex: folders('http', 'temporal', 'commands', 'workflows', 'activities', 'search-runner', 'import', 'store', 'output'),
    message: 'src/views/ is the pure ViewDefinition runner: it imports src/fhir and the FHIRPath engine, nothing that runs I/O.',
  }),
  layer(['src/sql/**/*.ts'], {
    regex: folders('http', 'temporal', 'commands', 'workflows', 'activities', 'search-runner', 'import', 'store', 'output'),
    message: 'src/sql/ runs SQL over views in the embedded engine: it imports the view runner and src/fhir, and is handed its rows; it reads no store itself.',
  }),
  layer(
    ['src/store/**/*.ts', 'src/output/**/*.ts', 'src/auth/**/*.ts', 'src/schedules/**/*.ts', 'src/search-runner/**/*.ts', 'src/import/**/*.ts', 'src/generate/**/*.ts'],
    { regex: folders('http', 'temporal', 'commands', 'workflows', 'activities'), message: 'This folder sits below the HTTP layer, Temporal and the workflows: it may not import them.' },
  ),
  layer(['src/streams/**/*.ts', 'src/process/**/*.ts'], {
    regex: '^\\.\\./',
    message: 'src/streams/ and src/process/ are helpers of no layer (streams, ports, child processes): they import nothing of bulkflow outside their folder.',
  }),
  layer(['src/metrics/**/*.ts'], {
    regex: folders('http', 'temporal', 'commands', 'workflows', 'activities', 'store', 'output'),
    message: 'src/metrics/ holds the metric registries the layers above record into: it imports none of them.',
  }),
  layer(['src/temporal/**/*.ts'], {
    regex: folders('http', 'commands'),
    message: 'src/temporal/ (the gateway, the worker, launchers) sits below the HTTP layer and the commands: it may not import them.',
  }),
  layer(['src/http/**/*.ts'], { regex: folders('commands'), message: 'src/http/ sits below the commands that start it: it may not import them.' }),
  layer(['activities/**/*.ts'], {
    regex: folders('http', 'temporal', 'commands', 'workflows'),
    message: 'Activities use src/ below the HTTP layer and the contracts; they know nothing of routes or workflows.',
  }),
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!(@temporalio/workflow|@temporalio/common)$|\\./|\\.\\./src/contracts/)',
              allowTypeImports: true,
              message:
                'workflows/ is replayed deterministically: import only @temporalio/workflow, @temporalio/common, other workflow modules and the contracts (src/contracts/, pure leaves); types from elsewhere with `import type`.',
            },
          ],
        },
      ],
    },
  },
);
