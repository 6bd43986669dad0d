// The campaign workflow `campaigns:<tenant>:<id>`: waits for its send time on a durable timer, snapshots the
// audience, then sends in chunks on the batch kit (pause, resume and cancel between chunks, continue-as-new within
// the history budget). While the SMTP server cannot be reached it shows `retrying` and backs off; the history
// carries cursors only, never recipients. The recipients are split into lanes whose chunks run at once, so more
// worker processes send one campaign faster. And `campaign-tests:<tenant>:<uuid>`: one test send.
import {
  ActivityCancellationType, ApplicationFailure, condition, ContinueAsNew, continueAsNew, proxyActivities, setHandler, workflowInfo,
} from '@temporalio/workflow';
import type { CampaignActivities } from '../activities/campaigns';
import type { CommandAuthor } from '../lib/audit';
import { BatchControl, runBatch } from './batch';
import { endCancelledRun, failureCause, failureMessage } from './failures';
import {
  CampaignInput, CampaignOutcome, cancelCampaignUpdate, INVALID_STATE, LANES_PATCH, pauseCampaignUpdate, resumeCampaignUpdate, lanesFrom, lanesOf, SendChunkReport, SendCursor,
  SendPlan, TestSendInput, TestSendResult,
} from './campaigns.api';
import { CANCELLED_RUN_PATCH, hasPatch } from './patches';
import { setWorkflowStatus } from './status';
import { OUTAGE_RETRY } from './retry';

// A chunk sends for a couple of seconds and heartbeats its cursor: a dead worker is noticed after 10 s and
// another resumes from the cursor. No attempt limit here: the activities give up on errors that are not outages.
// Not dispatched eagerly: an eager chunk goes to the worker that ran the workflow task, so every lane would land on
// the one process that has the workflow cached; through the task queue they spread over all campaign workers.
const chunks = proxyActivities<CampaignActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '10 seconds',
  retry: OUTAGE_RETRY,
  allowEagerDispatch: false,
});
// With the input's list (CANCELLED_RUN_PATCH), a run cancelled from Temporal waits for its lanes' chunks to stop
// (after the batch each is sending) before it writes its end: nothing goes out after the counts are final.
// Histories without the list went on at once, and replay so.
const chunksWaitingOnCancel = proxyActivities<CampaignActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '10 seconds',
  retry: OUTAGE_RETRY,
  allowEagerDispatch: false,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
const short = proxyActivities<CampaignActivities>({
  startToCloseTimeout: '5 minutes',
  retry: OUTAGE_RETRY,
});
const tests = proxyActivities<CampaignActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 3 },
});

/** Backoff while the SMTP server is down: 1 s doubling to a minute. */
const BACKOFF = { firstMs: 1_000, maxMs: 60_000 };

function errorOf(err: unknown): { code: string; message: string } {
  const cause = failureCause(err);
  if (cause instanceof ApplicationFailure && cause.type && /^[A-Z_]+$/.test(cause.type)) return { code: cause.type, message: cause.message };
  return { code: 'CAMPAIGN_FAILED', message: failureMessage(err) };
}

export async function campaignWorkflow(input: CampaignInput): Promise<CampaignOutcome> {
  const { resume, ...base } = input;
  const ids = { tenantId: base.tenantId, campaignId: base.campaignId, run: base.run };
  const known = base.patches;
  const send = known?.includes(CANCELLED_RUN_PATCH) ? chunksWaitingOnCancel : chunks;
  const control = new BatchControl(resume?.batch);
  let waiting = !resume && base.run === 1 && base.sendAt !== undefined;
  let author: CommandAuthor = base.by;
  let commands = 0;
  // Refusals are answered before anything is written: a scheduled campaign can only be cancelled.
  const validate = (command: 'pause' | 'resume' | 'cancel') => {
    if (waiting && command !== 'cancel') throw ApplicationFailure.nonRetryable(`The campaign is scheduled; it can be cancelled, not ${command}d`, INVALID_STATE);
    control.validate(command);
  };
  const handle = (run: () => Promise<void>) => async ({ by }: { by: CommandAuthor }) => {
    author = by;
    await run();
  };
  setHandler(pauseCampaignUpdate, handle(() => control.pause()), { validator: (_cmd: { by: CommandAuthor }) => validate('pause') });
  setHandler(resumeCampaignUpdate, handle(() => control.resume()), { validator: (_cmd: { by: CommandAuthor }) => validate('resume') });
  setHandler(cancelCampaignUpdate, handle(() => control.cancel()), { validator: (_cmd: { by: CommandAuthor }) => validate('cancel') });

  const end = async (status: CampaignOutcome['status'], by: CommandAuthor, error?: { code: string; message: string }) => {
    await short.endCampaign({ ...ids, status, by, error });
    setWorkflowStatus(status, known);
  };

  let plan: SendPlan | undefined;
  try {
    if (!resume) {
      await short.beginCampaignRun({ ...ids, waiting });
      if (waiting) {
        // A durable timer: a worker or server restart does not move the send time.
        const ms = Date.parse(base.sendAt!) - Date.now();
        if (ms > 0) await condition(() => control.cancelled, ms);
        waiting = false;
      }
      if (!control.cancelled) {
        setWorkflowStatus('running', known);
        if (base.run === 1 || hasPatch(known, LANES_PATCH)) plan = await short.snapshotCampaign(ids);
      }
    }
    let backoffMs = resume?.backoffMs ?? 0;
    const result = await runBatch<SendCursor, { cursor: SendCursor; done: boolean }>({
      // A new run starts from its plan's lanes; a continued one from the lanes it was handed.
      resume: { cursor: resume ? resume.batch.cursor : plan ? lanesOf(plan) : null, paused: resume?.batch.paused ?? false },
      control,
      known,
      historyBudget: base.historyBudget,
      async chunk(cursor) {
        const lanes = (cursor === null ? lanesOf(plan) : lanesFrom(cursor)).map((l) => ({ ...l }));
        const open = lanes.filter((l) => !l.done);
        // Every lane's chunk is awaited, so a failing one leaves no other still sending after the workflow moved on.
        const settled = await Promise.allSettled(open.map((l) => send.sendCampaignChunk({ ...ids, cursor: l.after, until: l.until })));
        const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failure) throw failure.reason;
        let down = false;
        settled.forEach((r, i) => {
          const report = (r as PromiseFulfilledResult<SendChunkReport>).value;
          open[i].after = report.cursor ?? open[i].after;
          open[i].done = report.done;
          down ||= report.smtpDown === true;
        });
        if (!down) {
          if (backoffMs) setWorkflowStatus('running', known);
          backoffMs = 0;
          return { cursor: lanes, done: lanes.every((l) => l.done) };
        }
        // The server is down: wait (a pause or cancel ends the wait at once), then try the same recipients again.
        backoffMs = Math.min(BACKOFF.maxMs, backoffMs ? backoffMs * 2 : BACKOFF.firstMs);
        setWorkflowStatus('retrying', known);
        await condition(() => control.paused || control.cancelled, backoffMs);
        return { cursor: lanes, done: false };
      },
      continueAsNew: (batch) => continueAsNew<typeof campaignWorkflow>({ ...base, resume: { batch, backoffMs } }),
      // The change is written (status, its audit event) before the command's caller is answered.
      onControl: (state) => short.controlCampaign({ ...ids, state, by: author, eventKey: `${workflowInfo().runId}:${++commands}` }),
    });
    if (result.cancelled) {
      setWorkflowStatus('cancelled', known);
      return { status: 'cancelled' };
    }
    await end('finished', base.by);
    return { status: 'finished' };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    // Cancelled from Temporal itself (the UI, the CLI).
    if (await endCancelledRun(err, known, (by) => end('cancelled', by))) return { status: 'cancelled' };
    const error = errorOf(err);
    await end('failed', base.by, error);
    return { status: 'failed', error };
  }
}

/** A test send: the campaign's current content, rendered for a subscriber or sample data, to a few addresses. */
export async function campaignTestWorkflow(input: TestSendInput): Promise<TestSendResult> {
  return tests.sendCampaignTest(input);
}
