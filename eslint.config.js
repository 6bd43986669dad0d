// Lint: typescript-eslint's recommended rules, promises that are awaited or handled (type-aware), the
// determinism fence around workflow code, and no focused tests.
const tseslint = require('typescript-eslint');

module.exports = tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'api/generated/', '.data/', '.tools/', 'coverage/', 'bench/results/', 'bench/.build/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // A promise nobody awaits loses its error (an unhandled rejection ends the process) and its ordering; one
    // passed where a callback's result is ignored (an event handler, forEach) the same. These need the types.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: __dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // A committed .only (or fit/fdescribe) silently skips every other test of its file in CI.
    files: ['test/**/*.ts', '**/*.test.ts'],
    rules: {
      'no-restricted-properties': ['error',
        ...['it', 'test', 'describe'].map((object) => ({ object, property: 'only', message: 'Focused test: remove .only before committing.' })),
      ],
      'no-restricted-globals': ['error',
        { name: 'fit', message: 'Focused test: use it().' },
        { name: 'fdescribe', message: 'Focused test: use describe().' },
      ],
    },
  },
  {
    // db/index.ts initialises every domain's models, so it loads every domain (domains/index.ts): Docket's own
    // modules import their models from db/models/<domain>.ts, else the barrel would import them back (a cycle).
    // Entry points, scripts, tests and benchmarks may use it.
    files: ['api/**/*.ts', 'activities/**/*.ts', 'domains/**/*.ts', 'lib/**/*.ts', 'workers/**/*.ts', 'db/models/**/*.ts', 'workflows/**/*.ts'],
    ignores: ['api/server.ts', 'workers/main.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^(\\.\\./)+db$', message: 'Import models from db/models/<domain> (db/index.ts loads every domain).' }],
      }],
    },
  },
  {
    // Which way imports go (README, Architecture): lib/ is infrastructure and knows no domain and no API;
    // activities never reach into the API; a route file never imports another (shared code is lifted into
    // domains/ or api/).
    files: ['lib/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [{ regex: '^(\\.\\./)+(api|domains)(/|$)', message: 'lib/ is infrastructure: it imports neither api/ nor domains/.' }],
      }],
    },
  },
  {
    files: ['activities/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [{ regex: '^(\\.\\./)+api(/|$)', message: 'Activities do not import the API: lift what they share into domains/ or lib/.' }],
      }],
    },
  },
  {
    files: ['api/routes/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [{ regex: '^\\./', message: 'A route file does not import another: lift what they share into domains/<domain>/ or api/.' }],
      }],
    },
  },
  {
    // Workflow code is replayed: it may import only the workflow SDK, shared definitions and pure
    // helpers. Activities, the database and Node built-ins come in as types only.
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'path', 'crypto', 'http', 'https', 'child_process'], message: 'No Node I/O in workflow code.' },
          { group: ['../db', '../db/*', '../lib/*', '../api/*', '../activities', '../activities/*', 'sequelize', 'pg', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'], allowTypeImports: true, message: 'Workflow code imports these as types only (import type).' },
        ],
      }],
    },
  },
);
