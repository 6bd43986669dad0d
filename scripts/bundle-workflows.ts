// `npm run bundle`: writes dist/workflow-bundle.js for workers to load.
import { writeWorkflowBundle } from '../workers/bundle';

writeWorkflowBundle().then(
  (p) => console.log(`workflow bundle written to ${p}`),
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
