// Lint: typescript-eslint's recommended rules, the determinism fence around workflow code, and no focused tests.
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
