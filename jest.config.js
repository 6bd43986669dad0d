// Fast unit tests, and integration tests against one real Postgres + Temporal per run (plus, on request, S3 tests).
const transform = { '^.+\\.(ts|js|mjs)$': ['@swc/jest'] };
// ESM-only dependencies are compiled to CommonJS for Jest's module registry (Node 20 has no native hook there).
const transformIgnorePatterns = ['/node_modules/(?!(@apidevtools/json-schema-ref-parser)/)'];
const integration = {
  transform,
  transformIgnorePatterns,
  testEnvironment: 'node',
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  setupFilesAfterEnv: ['<rootDir>/test/helpers/contract-guard.ts'],
};
module.exports = {
  // Workflows take real time against a real server; timeouts are generous, speed is measured in bench/.
  testTimeout: 120000,
  projects: [
    { displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'], transform, transformIgnorePatterns, testEnvironment: 'node' },
    { displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'], ...integration },
    // Against a real S3 server (SeaweedFS built from source: minutes the first time), so only under
    // `npm run test:s3` (scripts/test-s3.sh sets DOCKET_S3_TESTS), never in the default `npm test`.
    ...(process.env.DOCKET_S3_TESTS ? [{ displayName: 's3', testMatch: ['<rootDir>/test/s3/**/*.test.ts'], ...integration }] : []),
  ],
};
