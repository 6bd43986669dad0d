// Audit export and document batch histories recorded before the batch kit replay unchanged on today's
// code: exports running when a new worker is deployed keep their one-activity writer (behind patched()),
// and batches keep their chunk loop (the kit issues the same commands). A batch cancelled in Temporal
// (recorded 2026-12-04, started with DOCUMENT_PATCHES) replays its wait for the chunk and its end. Recorded on the code
// before their end was written: a batch whose chunk gave up (the run failed, no end), and audit exports whose
// markAuditExportRunning gave up or was cancelled in Temporal (outside the failure handling) — they replay as they ran.
import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';

const dir = path.join(__dirname, '../fixtures/batch-histories');
const recorded = fs.readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();

it('has the recorded histories', () => {
  expect(recorded).toEqual(['audit-export-failed.bin', 'audit-export-mark-running-cancelled.bin', 'audit-export-mark-running-failed.bin',
    'audit-export-ready.bin', 'document-batch-3-chunks.bin', 'document-batch-after-continue-as-new.bin', 'document-batch-cancelled.bin',
    'document-batch-continued-as-new.bin', 'document-batch-failed.bin']);
});

it.each(recorded)('replays %s without a nondeterminism error', async (file) => {
  const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file)));
  const last = history.events!.at(-1)!;
  expect(last.workflowExecutionCompletedEventAttributes ?? last.workflowExecutionContinuedAsNewEventAttributes ?? last.workflowExecutionCanceledEventAttributes
    ?? last.workflowExecutionFailedEventAttributes).toBeTruthy();
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! } }, history, `replay-${file}`);
});

it('has the cancelled batch end after its chunk reported cancelled', () => {
  const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, 'document-batch-cancelled.bin')));
  const events = history.events!;
  const scheduled = (type: string) => events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type);
  const chunkCancelled = events.findIndex((e) => e.activityTaskCanceledEventAttributes);
  expect(chunkCancelled).toBeGreaterThan(scheduled('renderBatchChunk'));
  expect(scheduled('cancelBatch')).toBeGreaterThan(chunkCancelled);
  expect(events.at(-1)!.workflowExecutionCanceledEventAttributes).toBeTruthy();
});

it('has the runs recorded before the failed-end patches end without writing it', () => {
  const activities = (file: string) => temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file))).events!
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
  expect(activities('document-batch-failed.bin')).toEqual(['markBatchRunning', 'renderBatchChunk', 'renderBatchChunk']);
  expect(activities('audit-export-mark-running-failed.bin')).toEqual(['markAuditExportRunning']);
  expect(activities('audit-export-mark-running-cancelled.bin')).toEqual(['markAuditExportRunning']);
});
