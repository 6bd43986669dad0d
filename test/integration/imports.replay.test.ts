// Import workflow histories recorded on this code (finished, dry run, failed, cancelled by its Update, and a
// chain continued as new; and, with the input's patch list, cancelled from Temporal itself) replay without a
// nondeterminism error: a change to workflows/imports.ts that would break running imports fails here, and needs patched().
import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { scheduledAfterTheOthersClosed } from '../helpers/histories';

const dir = path.join(__dirname, '../fixtures/import-histories');
const recorded = fs.readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();

it('has the recorded histories', () => {
  expect(recorded).toEqual(['import-after-continue-as-new.bin', 'import-cancelled-in-temporal.bin', 'import-cancelled.bin', 'import-continued-as-new.bin',
    'import-dry-run.bin', 'import-failed.bin', 'import-finished.bin']);
});

it.each(recorded)('replays %s without a nondeterminism error', async (file) => {
  const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file)));
  const events = history.events!;
  const last = events.at(-1)!;
  if (file === 'import-cancelled-in-temporal.bin') {
    // Ends cancelled after its end was written, with no patch marker (the input named them).
    expect(last.workflowExecutionCanceledEventAttributes).toBeTruthy();
    // Its end was scheduled only once the chunk it cancelled had stopped (the chunk waited for, not abandoned).
    expect(events.some((e) => e.activityTaskCancelRequestedEventAttributes)).toBe(true);
    expect(scheduledAfterTheOthersClosed(events, 'endImport')).toBe(true);
    expect(events.some((e) => e.markerRecordedEventAttributes)).toBe(false);
  } else expect(last.workflowExecutionCompletedEventAttributes ?? last.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
  if (file === 'import-cancelled.bin') expect(events.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toBe(true);
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! } }, history, `replay-${file}`);
});
