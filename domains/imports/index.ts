// Imports: CSV/TSV/XLSX files through mapping templates into a target (subscribers, users), as a resumable workflow.
import { createImportActivities } from '../../activities/imports';
import { importRoutes } from '../../api/routes/imports';
import { initImportModels } from '../../db/models/imports';
import { IMPORTS_TASK_QUEUE } from '../../workflows/imports.api';
import { defineDomain } from '../module';

export const imports = defineDomain({
  name: 'imports',
  models: initImportModels,
  queues: { imports: IMPORTS_TASK_QUEUE },
  activities: createImportActivities,
  attempts: { stageImportChunk: 20, mergeImportChunk: 20, endImport: 20, revertImport: 20 },
  // Written in phase parsing with no start time; the first staging chunk sets started_at.
  // A revert waits from its request until it has an outcome; asked again after a refusal, it is another run of its id.
  startIntents: {
    importWorkflow: { table: 'imports', entityType: 'import', waiting: "phase = 'parsing' AND started_at IS NULL" },
    importRevertWorkflow: { table: 'imports', entityType: 'import', waiting: 'revert_requested_at IS NOT NULL AND revert_outcome IS NULL AND reverted_at IS NULL', runs: true },
  },
  routes: importRoutes,
});
