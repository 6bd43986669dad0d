// The job run workflow alone, with fake activities, on a time-skipping server: the run row follows
// the job (completed, failed after the schedule's retries, cancelled), and bad parameters are not retried.
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { withActivityRetries } from '../../activities';
import type { JobActivities } from '../../activities/jobs';
import { JobParamsError } from '../../domains/jobs/job-types';
import { jobRunWorkflow } from '../../workflows/jobs';
import { JobRunInput } from '../../workflows/jobs.api';
import { waitFor } from '../helpers/wait';
import { timeSkippingEnv } from '../helpers/time-skipping';

jest.setTimeout(60_000);
let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
});
afterAll(() => env?.teardown());

function fakes(job: (attempt: number) => Promise<Record<string, unknown>>) {
  const log = { started: [] as string[], finished: [] as { status: string; error?: string; result?: Record<string, unknown> }[], attempts: 0 };
  const activities: JobActivities = {
    async jobRunStarted(i) { log.started.push(i.jobType); },
    async jobRunFinished(i) { log.finished.push({ status: i.status, error: i.error, result: i.result }); },
    async runJob() { log.attempts++; return job(Context.current().info.attempt); },
  };
  return { activities, log };
}

async function run(f: ReturnType<typeof fakes>, body: (h: Awaited<ReturnType<typeof env.client.workflow.start<typeof jobRunWorkflow>>>) => Promise<void>, retry = { maximumAttempts: 3, initialIntervalSeconds: 10 }) {
  const taskQueue = `wf-jobs-${randomUUID()}`;
  // The fakes keep the real retry rules: the schedule's attempts are counted by the activity (activities/index.ts).
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! }, activities: withActivityRetries(f.activities) });
  const input: JobRunInput = { tenantId: 't', scheduleId: randomUUID(), jobType: 'http', params: {}, retry };
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
