// Reminder histories replay on this code without a nondeterminism error. Two were recorded on the code before the
// last firing's in-app deliveries went with the final state write (`…-deliver-then-write`: a local activity per
// delivery, then the write), so reminders in flight during that upgrade carry on; two on the code after it
// (`…-final-write`: an in-app-only reminder's last firing is one local activity with the patch marker; with email
// beside it, no marker, as before), so a later change that would break reminders started on this code fails here too.
// Two (`…-current`) on the code that starts reminders with what the API wrote (input.written): no first write, and
// no patch markers (the input names the patches its code had: REMINDER_PATCHES), so they are far shorter.
import fs from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';

const dir = path.join(__dirname, '../fixtures/reminder-histories');
const recorded = fs.readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();
/** Whether the history carries the marker of the patch that sends a last firing's in-app deliveries with the final write. */
const patchMarked = (h: temporal.api.history.v1.IHistory) => h.events!.some((e) => {
  const marker = e.markerRecordedEventAttributes;
  if (marker?.markerName !== 'core_patch') return false;
  return Object.values(marker.details ?? {}).some((p) => (p.payloads ?? []).some((x) => Buffer.from(x.data ?? []).toString().includes('reminders-final-write-delivers')));
});

it('has the recorded histories', () => {
  expect(recorded).toEqual([
    'reminder-email-and-in-app-current.bin', 'reminder-email-and-in-app-deliver-then-write.bin', 'reminder-email-and-in-app-final-write.bin',
    'reminder-in-app-current.bin', 'reminder-in-app-deliver-then-write.bin', 'reminder-in-app-final-write.bin',
  ]);
});

it.each(recorded)('replays %s without a nondeterminism error', async (file) => {
  const history = temporal.api.history.v1.History.decode(fs.readFileSync(path.join(dir, file)));
  expect(history.events!.at(-1)!.workflowExecutionCompletedEventAttributes).toBeTruthy();
  const localActivities = history.events!.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length;
  // In-app only: the first write, then either a delivery per recipient (2) and the final write, or the final write alone.
  if (file === 'reminder-in-app-deliver-then-write.bin') expect([localActivities, patchMarked(history)]).toEqual([4, false]);
  if (file === 'reminder-in-app-final-write.bin') expect([localActivities, patchMarked(history)]).toEqual([2, true]);
  if (file.startsWith('reminder-email-and-in-app')) expect(patchMarked(history)).toBe(false);
  const markers = history.events!.flatMap((e) => (e.markerRecordedEventAttributes ? [e.markerRecordedEventAttributes.markerName] : []));
  // Current: the last firing's write is the only local activity (with the in-app deliveries, or after the emails' activities).
  if (file.endsWith('-current.bin')) expect(markers).toEqual(file.startsWith('reminder-in-app') ? ['core_local_activity'] : ['core_local_activity', 'core_local_activity']);
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! } }, history, `replay-${file}`);
});
