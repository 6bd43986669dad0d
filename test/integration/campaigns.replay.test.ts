// Campaign workflow histories recorded on earlier code replay on this code without a nondeterminism error: sends that
// were running when a worker is upgraded go on. `before-lanes-*` were recorded before sends had lanes (one cursor, no
// plan on a retry run): finished, paused and resumed, cancelled while running, scheduled then cancelled, scheduled
// then sent, the SMTP server down and back, both runs of a retry of failed recipients, and a chain continued as new.
// `lanes-*` were recorded with two lanes (finished, paused and resumed, cancelled, the SMTP server down, a retry run,
// continued as new and after). `patches-*` were recorded with the input's patch list, cancelled from Temporal itself
// while scheduled and while sending (they end cancelled); `before-patches-*` the same on the code before the list
// (`45fcdb3`: they completed, without waiting for the lanes), as runs in flight at a deploy replay. A change to workflows/campaigns.ts that would break them fails here.
import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { scheduledAfterTheOthersClosed } from '../helpers/histories';

const dir = path.join(__dirname, '../fixtures/campaign-histories');
const recorded = fs.readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();

it('has the recorded histories', () => {
  expect(recorded.filter((f) => f.startsWith('before-lanes-'))).toHaveLength(10);
  expect(recorded.filter((f) => f.startsWith('lanes-'))).toHaveLength(7);
  expect(recorded.filter((f) => f.startsWith('patches-'))).toEqual(['patches-scheduled-cancelled-in-temporal.bin', 'patches-sending-cancelled-in-temporal.bin']);
  expect(recorded.filter((f) => f.startsWith('before-patches-'))).toEqual(['before-patches-scheduled-cancelled-in-temporal.bin', 'before-patches-sending-cancelled-in-temporal.bin']);
});

it.each(recorded)('replays %s without a nondeterminism error', async (file) => {
  const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file)));
  const events = history.events!;
  const last = events.at(-1)!;
  if (file.startsWith('patches-')) {
    // Ends cancelled after its end was written, with no patch marker (the input named them).
    expect(last.workflowExecutionCanceledEventAttributes).toBeTruthy();
    // Its end was scheduled only once the lanes it cancelled (sending) had stopped: waited for, not abandoned.
    if (file.includes('-sending-')) expect(events.some((e) => e.activityTaskCancelRequestedEventAttributes)).toBe(true);
    expect(scheduledAfterTheOthersClosed(events, 'endCampaign')).toBe(true);
    expect(events.some((e) => e.markerRecordedEventAttributes)).toBe(false);
  } else expect(last.workflowExecutionCompletedEventAttributes ?? last.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! } }, history, `replay-${file}`);
});
