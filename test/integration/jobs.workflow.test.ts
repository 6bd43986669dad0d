// The job run workflow alone, with fake activities, on a time-skipping server: the run row follows
// the job (completed, failed after the schedule's retries, cancelled — only once the job has stopped, also while the
// row is being written), bad parameters are not retried, and a run still going past its schedule's long-run alert
// tells once.
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { withActivityRetries } from '../../activities';
import type { JobActivities } from '../../activities/jobs';
import { JobParamsError } from '../../domains/jobs/job-types';
import { jobRunWorkflow } from '../../workflows/jobs';
import { JOB_PATCHES, JobRunInput } from '../../workflows/jobs.api';
import { waitFor } from '../helpers/wait';
import { timeSkippingEnv } from '../helpers/time-skipping';

jest.setTimeout(60_000);
let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
});
afterAll(() => env?.teardown());

function fakes(job: (attempt: number) => Promise<Record<string, unknown>>, longRunAlertMs: number | null = null) {
  const log = { started: [] as string[], finished: [] as { status: string; error?: string; result?: Record<string, unknown> }[], attempts: 0, toldLong: 0, toldAfter: [] as (number | undefined)[] };
  const activities: JobActivities = {
    async jobRunStarted(i) { log.started.push(i.jobType); return { longRunAlertMs }; },
    async tellOfLongRun(i) { log.toldLong++; log.toldAfter.push(i.afterSeconds); },
    async jobRunFinished(i) { log.finished.push({ status: i.status, error: i.error, result: i.result }); },
    async runJob() { log.attempts++; return job(Context.current().info.attempt); },
  };
  return { activities, log };
}

async function run(f: ReturnType<typeof fakes>, body: (h: Awaited<ReturnType<typeof env.client.workflow.start<typeof jobRunWorkflow>>>) => Promise<void>, retry = { maximumAttempts: 3, initialIntervalSeconds: 10 }, over: Partial<JobRunInput> = {}) {
  const taskQueue = `wf-jobs-${randomUUID()}`;
  // The fakes keep the real retry rules: the schedule's attempts are counted by the activity (activities/index.ts).
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! }, activities: withActivityRetries(f.activities) });
  const input: JobRunInput = { tenantId: 't', scheduleId: randomUUID(), jobType: 'http', params: {}, retry, ...over };
  await worker.runUntil(async () => {
    const h = await env.client.workflow.start(jobRunWorkflow, { taskQueue, workflowId: `jobs:t:${input.scheduleId}-run`, args: [input] });
    try {
      await body(h);
    } finally {
      await h.terminate('test over').catch(() => undefined);
    }
  });
}

it('records a run that completes after a retry', async () => {
  const f = fakes(async (attempt) => { if (attempt < 2) throw new Error('flaky'); return { deleted: 3 }; });
  await run(f, async (h) => {
    expect(await h.result()).toMatchObject({ status: 'completed', result: { deleted: 3 } });
    expect(f.log.attempts).toBe(2);
    expect(f.log.started).toEqual(['http']);
    expect(f.log.finished).toEqual([{ status: 'completed', result: { deleted: 3 } }]);
  });
});

it('records a failed run once the schedule\'s retries are spent, and fails the workflow', async () => {
  const f = fakes(async () => { throw new Error('HTTP 500 from the endpoint'); });
  await run(f, async (h) => {
    await expect(h.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(f.log.attempts).toBe(3);
    expect(f.log.finished).toEqual([{ status: 'failed', error: 'HTTP 500 from the endpoint', result: undefined }]);
  });
});

it('does not retry bad parameters', async () => {
  const f = fakes(async () => { throw new JobParamsError('params.url: must be a URL'); });
  await run(f, async (h) => {
    await expect(h.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(f.log.attempts).toBe(1);
    expect(f.log.finished[0]).toMatchObject({ status: 'failed', error: 'params.url: must be a URL' });
  });
});

it('records a cancelled run when the workflow is cancelled mid-job', async () => {
  let began = false;
  const f = fakes(async () => {
    const ctx = Context.current();
    began = true;
    // A job that heartbeats until it is cancelled.
    for (;;) {
      ctx.heartbeat();
      await Promise.race([ctx.cancelled, new Promise((r) => setTimeout(r, 200))]);
    }
  });
  await run(f, async (h) => {
    await waitFor(async () => began, { what: 'the job to begin', intervalMs: 50 });
    await h.cancel();
    await expect(h.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(f.log.finished).toEqual([{ status: 'cancelled', error: 'cancelled', result: undefined }]);
  });
});

it('records the cancel only once the job has stopped, with what it did before it stopped', async () => {
  const events: string[] = [];
  const f = fakes(async () => {
    const ctx = Context.current();
    events.push('job began');
    // A purge that heartbeats between batches and, cancelled, finishes its batch before it stops.
    for (let deleted = 0; ; deleted += 10) {
      ctx.heartbeat({ deleted });
      if (ctx.cancellationSignal.aborted) {
        await new Promise((r) => setTimeout(r, 500));
        events.push('job stopped');
        throw new CancelledFailure('job cancelled', [{ deleted: deleted + 10 }]);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  const finished = f.activities.jobRunFinished;
  f.activities.jobRunFinished = async (i) => { events.push(`run ${i.status}`); return finished(i); };
  await run(f, async (h) => {
    await waitFor(async () => events.includes('job began'), { what: 'the job to begin', intervalMs: 50 });
    await h.cancel();
    await expect(h.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(events).toEqual(['job began', 'job stopped', 'run cancelled']);
    expect(f.log.finished).toEqual([{ status: 'cancelled', error: 'cancelled', result: { deleted: expect.any(Number) } }]);
  }, undefined, { patches: JOB_PATCHES });
});

it('records a run cancelled while its row is being written as cancelled, after the row is written, running no job', async () => {
  const events: string[] = [];
  let release!: () => void;
  const written = new Promise<void>((r) => { release = r; });
  const f = fakes(async () => ({ ok: true }));
  const start = f.activities.jobRunStarted;
  f.activities.jobRunStarted = async (i) => { events.push('row begun'); await written; events.push('row written'); return start(i); };
  const finished = f.activities.jobRunFinished;
  f.activities.jobRunFinished = async (i) => { events.push(`run ${i.status}`); return finished(i); };
  await run(f, async (h) => {
    await waitFor(async () => events.includes('row begun'), { what: 'jobRunStarted to begin', intervalMs: 50 });
    await h.cancel();
    // The workflow has seen the cancel (a workflow task completed after it) while the row is still being written.
    await waitFor(async () => {
      const e = (await h.fetchHistory()).events ?? [];
      const at = e.findIndex((x) => x.workflowExecutionCancelRequestedEventAttributes);
      return at >= 0 && e.slice(at).some((x) => x.workflowTaskCompletedEventAttributes);
    }, { what: 'the cancel to reach the workflow', intervalMs: 50 });
    release();
    await expect(h.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(events).toEqual(['row begun', 'row written', 'run cancelled']);
    expect(f.log.attempts).toBe(0);
    expect(f.log.finished).toEqual([{ status: 'cancelled', error: 'cancelled' }]);
  }, undefined, { patches: JOB_PATCHES });
});

describe('the long-run alert', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('tells once when the job is still going at the alert, then records its outcome', async () => {
    const f = fakes(async () => { await sleep(2_500); return { ok: true }; }, 1_000);
    await run(f, async (h) => {
      expect(await h.result()).toMatchObject({ status: 'completed' });
      expect(f.log.toldLong).toBe(1);
      // The alert it waited (read when the run started) goes with it, for the run's job.run.long_running event.
      expect(f.log.toldAfter).toEqual([1]);
      expect(f.log.finished).toEqual([{ status: 'completed', result: { ok: true } }]);
    });
  });

  it('tells the same in a run started as the API starts it (input.patches), with no patch marker in its history', async () => {
    const f = fakes(async () => { await sleep(2_500); return { ok: true }; }, 1_000);
    await run(f, async (h) => {
      expect(await h.result()).toMatchObject({ status: 'completed' });
      expect(f.log.toldLong).toBe(1);
      const events = (await h.fetchHistory()).events ?? [];
      expect(events.filter((e) => e.markerRecordedEventAttributes)).toEqual([]);
      // Status only (this test starts the run without it; the API and schedules start it as running): no TemporalChangeVersion.
      expect(events.flatMap((e) => Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}))).toEqual(['Status', 'Status']);
    }, undefined, { patches: JOB_PATCHES });
  });

  it('tells nobody when the job ends first, and leaves no timer behind', async () => {
    const f = fakes(async () => ({ ok: true }), 60_000);
    await run(f, async (h) => {
      expect(await h.result()).toMatchObject({ status: 'completed' });
      expect(f.log.toldLong).toBe(0);
      const events = (await h.fetchHistory()).events ?? [];
      expect(events.filter((e) => e.timerStartedEventAttributes)).toHaveLength(1);
      expect(events.filter((e) => e.timerCanceledEventAttributes)).toHaveLength(1);
    });
  });

  it('an alert that cannot be sent never fails or stalls the run', async () => {
    const f = fakes(async () => { await sleep(1_500); return { ok: true }; }, 300);
    f.activities.tellOfLongRun = async () => { throw ApplicationFailure.nonRetryable('SMTP refused', 'ActivityGaveUp'); };
    await run(f, async (h) => {
      expect(await h.result()).toMatchObject({ status: 'completed', result: { ok: true } });
      expect(f.log.finished).toEqual([{ status: 'completed', result: { ok: true } }]);
    });
  });

  it('tells before the failure of a slow failing job; without an alert there is no timer', async () => {
    const slowFailure = fakes(async () => { await sleep(1_500); throw new JobParamsError('params.url: must be a URL'); }, 500);
    await run(slowFailure, async (h) => {
      await expect(h.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      expect(slowFailure.log.toldLong).toBe(1);
      expect(slowFailure.log.finished[0]).toMatchObject({ status: 'failed' });
    });
    const none = fakes(async () => { await sleep(500); return {}; });
    await run(none, async (h) => {
      await h.result();
      expect((await h.fetchHistory()).events?.some((e) => e.timerStartedEventAttributes)).toBe(false);
      expect(none.log.toldLong).toBe(0);
    });
  });
});
