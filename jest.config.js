// Two projects: fast unit tests, and integration tests against one real Postgres + Temporal per run.
const transform = { '^.+\\.(ts|js|mjs)$': ['@swc/jest'] };
// ESM-only dependencies are compiled to CommonJS for Jest's module registry (Node 20 has no native hook there).
const transformIgnorePatterns = ['/node_modules/(?!(@apidevtools/json-schema-ref-parser)/)'];
module.exports = {
  // Workflows take real time against a real server; timeouts are generous, speed is measured in bench/.
  testTimeout: 120000,
  projects: [
    { displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'], transform, transformIgnorePatterns, testEnvironment: 'node' },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      transform,
      transformIgnorePatterns,
      testEnvironment: 'node',
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/helpers/contract-guard.ts'],
    },
  ],
};
