// Job run histories replay on this code without a nondeterminism error: three recorded on the code before the
// long-run alert (completed, failed, cancelled mid-job; no patch marker, no timer), so runs in flight during that
// upgrade carry on, and one recorded with the alert firing (the patch marker, the timer, the alert's activity), so a
// later change to workflows/jobs.ts that would break runs started on this code fails here too; and one recorded with
// the alert firing in a run whose input names its patches (`-current`: no marker at all). Two recorded after
// JOB_ENDS_WHEN_STOPPED_PATCH, input naming it: cancelled mid-job (the end written once the job had stopped) and
// cancelled while its row was being written (the end written after it); the one from before wrote the end at once.
import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { scheduledAfterTheOthersClosed } from '../helpers/histories';

const dir = path.join(__dirname, '../fixtures/job-histories');
const recorded = fs.readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();

it('has the recorded histories', () => {
  expect(recorded).toEqual([
    'job-cancelled-starting-current.bin', 'job-cancelled-waited-current.bin', 'job-cancelled.bin', 'job-completed.bin', 'job-failed.bin',
    'job-long-run-alerted-current.bin', 'job-long-run-alerted.bin',
  ]);
});

it.each(recorded)('replays %s without a nondeterminism error', async (file) => {
  const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file)));
  const last = history.events!.at(-1)!;
  expect(last.workflowExecutionCompletedEventAttributes ?? last.workflowExecutionFailedEventAttributes ?? last.workflowExecutionCanceledEventAttributes).toBeTruthy();
  const alerted = history.events!.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'tellOfLongRun');
  expect(history.events!.some((e) => e.timerStartedEventAttributes)).toBe(file.startsWith('job-long-run-alerted'));
  expect(alerted).toBe(file.startsWith('job-long-run-alerted'));
  // Recorded with the run's input naming its patches (JOB_PATCHES): no patch marker.
  if (file.endsWith('-current.bin')) expect(history.events!.filter((e) => e.markerRecordedEventAttributes)).toEqual([]);
  if (file.startsWith('job-cancelled')) {
    expect(last.workflowExecutionCanceledEventAttributes).toBeTruthy();
    // The cancelled run's end is written after every activity before it had closed, since the patch only.
    expect(scheduledAfterTheOthersClosed(history.events!, 'jobRunFinished')).toBe(file !== 'job-cancelled.bin');
  }
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! } }, history, `replay-${file}`);
});
