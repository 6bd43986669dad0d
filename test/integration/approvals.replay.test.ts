// Approval flow histories recorded with earlier workflow code replay unchanged on today's code: every
// behaviour change in workflows/approvals.ts sits behind patched(), so flows running when a new worker
// is deployed go on as they started.
import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';

const dir = path.join(__dirname, '../fixtures/approval-histories');
const recorded = fs.readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();

it('has the recorded histories', () => {
  // Recorded before the fixes of issue 12: a quorum of 3 approved with 2 signatures (the requester was the
  // third approver), flows ended by expiry and due-reject, escalation, a reopened stage, auto-approval.
  expect(recorded).toEqual(expect.arrayContaining(['quorum-with-requester-approver.bin', 'expired.bin', 'due-reject.bin', 'remind-escalate-approve.bin']));
  // Recorded with the flow's input naming its patches (workflows/patches.ts): two stages approved; a quorum cancelled.
  expect(recorded).toEqual(expect.arrayContaining(['two-stages-approved-current.bin', 'quorum-cancelled-current.bin']));
});

it.each(recorded)('replays %s without a nondeterminism error', async (file) => {
  const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file)));
  const last = history.events!.at(-1)!;
  // Each recorded flow ran to its end (completed or terminated), so the whole run is replayed.
  expect(last.workflowExecutionCompletedEventAttributes ?? last.workflowExecutionTerminatedEventAttributes).toBeTruthy();
  // Recorded on the code that names its patches in the flow's input (APPROVAL_PATCHES): not one patch marker.
  if (file.endsWith('-current.bin')) expect(history.events!.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')).toEqual([]);
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! } }, history, `replay-${file}`);
});
