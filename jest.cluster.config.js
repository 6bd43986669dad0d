// `npm run test:cluster`: the integration suite against the cluster topology's Postgres and real Temporal
// server (scripts/test-cluster.ts starts it and sets DATABASE_URL / TEMPORAL_ADDRESS), plus test/cluster/.
const base = require('./jest.config.js');

const integration = base.projects.find((p) => p.displayName === 'integration');

// Suites that never touch the shared server, or need one of their own (each says why):
const EXCLUDED = {
  // Kill and restart their own Temporal dev server on its database file: the real server is shared by the run.
  'temporal-restart': 'SIGKILLs and restarts a dev server of its own',
  // `npm start` as a newcomer runs it: its own embedded Postgres and dev server, nothing of the cluster.
  'dev-stack': 'tests `npm start` (its own dev server), not the cluster',
  // Workflow logic on the time-skipping test server (TEMPORAL_TEST_SERVER), never on TEMPORAL_ADDRESS.
  'approvals.workflow': 'time-skipping test server and a dev server (small history budget) of its own',
  'documents.workflow': 'time-skipping test server of its own',
  'imports.revert-workflow': 'time-skipping test server of its own',
  'jobs.workflow': 'time-skipping test server of its own',
  'reminders.workflow': 'time-skipping test server of its own',
};

module.exports = {
  testTimeout: base.testTimeout,
  projects: [
    {
      ...integration,
      displayName: 'cluster',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/cluster/**/*.test.ts'],
      testPathIgnorePatterns: [
        '/node_modules/',
        ...Object.keys(EXCLUDED).map((name) => `/test/integration/${name.replace('.', '\\.')}\\.test\\.ts$`),
        // Recorded histories replayed in-process (every *.replay suite): no server at all.
        '/test/integration/[^/]+\\.replay\\.test\\.ts$',
      ],
    },
  ],
};
