// Job run histories recorded on the code before the long-run alert (completed, failed, cancelled mid-job) replay on
// this code without a nondeterminism error: the alert's timer is behind patched(), so runs in flight during an
// upgrade carry on. A change to workflows/jobs.ts that would break them fails here.
import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';

const dir = path.join(__dirname, '../fixtures/job-histories');
const recorded = fs.readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();

it('has the recorded histories', () => {
  expect(recorded).toEqual(['job-cancelled.bin', 'job-completed.bin', 'job-failed.bin']);
});

it.each(recorded)('replays %s without a nondeterminism error', async (file) => {
  const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file)));
  const last = history.events!.at(-1)!;
  expect(last.workflowExecutionCompletedEventAttributes ?? last.workflowExecutionFailedEventAttributes ?? last.workflowExecutionCanceledEventAttributes).toBeTruthy();
  expect(history.events!.some((e) => e.timerStartedEventAttributes)).toBe(false);
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! } }, history, `replay-${file}`);
});
