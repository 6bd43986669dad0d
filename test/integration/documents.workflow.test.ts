// The document workflows alone, with fake activities: a job that cannot render ends `failed` without
// retries, and a long batch continues as new so no run's history grows with the batch.
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { ConnectionRefusedError } from 'sequelize';
import { withActivityRetries } from '../../activities';
import { GAVE_UP, withOutageRetries } from '../../lib/activity-retries';
import type { DocumentActivities } from '../../activities/documents';
import { documentBatchWorkflow, documentWorkflow } from '../../workflows/documents';
import { DOCUMENT_PATCHES, TEMPLATE_RENDER_ERROR } from '../../workflows/documents.api';

jest.setTimeout(120_000);
let env: TestWorkflowEnvironment;
beforeAll(async () => { env = await TestWorkflowEnvironment.createFromExistingServer({ address: process.env.TEMPORAL_ADDRESS }); });
afterAll(() => env?.teardown());

function fakes(over: Partial<DocumentActivities> = {}) {
  const log = { failed: [] as string[], renders: 0, chunks: 0, finished: 0 };
  const activities: DocumentActivities = {
    async renderDocument() { log.renders++; return { fileId: 'f-1' }; },
    async failDocument(i) { log.failed.push(i.error); },
    async markBatchRunning() {},
    async renderBatchChunk() { return { remaining: 0 }; },
    async finishBatch() { log.finished++; return { done: 0, failed: 0 }; },
    async cancelBatch(i) { log.failed.push(i.error); return { done: 0, failed: 0 }; },
    async renderPreview() { return ''; },
    ...over,
  };
  return { activities, log };
}

async function run<T>(activities: DocumentActivities, body: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `wf-documents-${randomUUID()}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! }, activities });
  return worker.runUntil(body(taskQueue));
}

it('ends a job whose template cannot render as failed, at once and with the reason', async () => {
  const { activities, log } = fakes({
    async renderDocument() { log.renders++; throw ApplicationFailure.nonRetryable('base: undefined variable: customer', TEMPLATE_RENDER_ERROR); },
  });
  const result = await run(activities, async (taskQueue) => {
    const id = randomUUID();
    return env.client.workflow.execute(documentWorkflow, { taskQueue, workflowId: `documents:t:${id}`, args: [{ tenantId: 't', documentId: id }] });
  });
  expect(result).toEqual({ status: 'failed', error: 'base: undefined variable: customer' });
  expect(log.renders).toBe(1);
  expect(log.failed).toEqual(['base: undefined variable: customer']);
});

it('retries a render that failed for a passing reason (a crashed browser) and ends ready', async () => {
  let calls = 0;
  const { activities, log } = fakes({
    async renderDocument() { if (++calls < 3) throw new Error('Target page, context or browser has been closed'); return { fileId: 'f-9' }; },
  });
  const result = await run(activities, async (taskQueue) => {
    const id = randomUUID();
    return env.client.workflow.execute(documentWorkflow, { taskQueue, workflowId: `documents:t:${id}`, args: [{ tenantId: 't', documentId: id }] });
  });
  expect(result).toEqual({ status: 'ready', fileId: 'f-9' });
  expect(calls).toBe(3);
  expect(log.failed).toEqual([]);
});

it('waits out a database outage however long, but gives up on another failure after 5 attempts', async () => {
  let calls = 0;
  const outage = fakes({
    async renderDocument() {
      // Six attempts meet a database that refuses connections (the old policy gave up after five).
      if (++calls <= 6) throw new ConnectionRefusedError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }));
      return { fileId: 'f-7' };
    },
  });
  const broken = fakes({ async renderDocument() { broken.log.renders++; throw new Error('Target page, context or browser has been closed'); } });
  const [waited, failed] = await Promise.all([outage, broken].map((f) => run(withActivityRetries(f.activities), async (taskQueue) => {
    const id = randomUUID();
    return env.client.workflow.execute(documentWorkflow, { taskQueue, workflowId: `documents:t:${id}`, args: [{ tenantId: 't', documentId: id }] });
  })));
  expect(waited).toEqual({ status: 'ready', fileId: 'f-7' });
  expect(calls).toBe(7);
  expect(failed).toEqual({ status: 'failed', error: 'Target page, context or browser has been closed' });
  expect(broken.log.renders).toBe(5);
});

it('continues a long batch as new: 250 chunks in three runs, each with a small history', async () => {
  let remaining = 250;
  const { activities, log } = fakes({
    async renderBatchChunk() { log.chunks++; remaining--; return { remaining }; },
    async finishBatch() { log.finished++; return { done: 250, failed: 0 }; },
  });
  const workflowId = `document-batches:t:${randomUUID()}`;
  const result = await run(activities, async (taskQueue) => {
    const handle = await env.client.workflow.start(documentBatchWorkflow, { taskQueue, workflowId, args: [{ tenantId: 't', batchId: 'b', chunkSize: 1 }] });
    return handle.result();
  });
  expect(result).toEqual({ status: 'ready', done: 250, failed: 0 });
  expect(log.chunks).toBe(250);
  expect(log.finished).toBe(1);
  const runs: number[] = [];
  for await (const w of env.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const history = await env.client.workflow.getHandle(workflowId, w.runId).fetchHistory();
    runs.push(history.events!.length);
  }
  expect(runs).toHaveLength(3);
  for (const events of runs) expect(events).toBeLessThan(1000);
});

it('ends a batch cancelled in Temporal once its running chunk has stopped: the rest failed as cancelled, Status cancelled, the run cancelled', async () => {
  const order: string[] = [];
  let chunkStarted!: () => void;
  const started = new Promise<void>((resolve) => { chunkStarted = resolve; });
  const { activities, log } = fakes({
    async renderBatchChunk() {
      const ctx = Context.current();
      chunkStarted();
      // Heartbeats (the cancel comes with a heartbeat's answer) until cancelled, then finishes the render under way.
      const beat = setInterval(() => ctx.heartbeat(), 100);
      try {
        await ctx.cancelled;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 500));
        order.push('chunk stopped');
        throw new CancelledFailure('batch chunk cancelled');
      } finally {
        clearInterval(beat);
      }
      return { remaining: 0 };
    },
    async cancelBatch(i) { order.push('batch ended'); log.failed.push(i.error); return { done: 1, failed: 3 }; },
  });
  const workflowId = `document-batches:t:${randomUUID()}`;
  const handle = await run(activities, async (taskQueue) => {
    const h = await env.client.workflow.start(documentBatchWorkflow, { taskQueue, workflowId, args: [{ tenantId: 't', batchId: 'b', chunkSize: 4, patches: DOCUMENT_PATCHES }] });
    await started;
    await h.cancel(); // what the UI's "Request cancellation" does
    const err = await h.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    return h;
  });
  // The batch's end was written after the chunk stopped, so nothing it rendered lands after the counts.
  expect(order).toEqual(['chunk stopped', 'batch ended']);
  expect(log.failed).toEqual(['cancelled in Temporal']);
  expect(log.finished).toBe(0);
  const d = await handle.describe();
  expect(d.status.name).toBe('CANCELLED');
  expect(d.searchAttributes.Status).toEqual(['cancelled']);
  // Started with the patch list, the run met no patch marker.
  const events = (await handle.fetchHistory()).events ?? [];
  expect(events.filter((e) => e.markerRecordedEventAttributes)).toHaveLength(0);
});

/** Runs a batch started with DOCUMENT_PATCHES whose activities give up after one attempt, and answers how it ended. */
async function failingBatch(activities: DocumentActivities) {
  const workflowId = `document-batches:t:${randomUUID()}`;
  return run(withOutageRetries(activities, { default: 1 }), async (taskQueue) => {
    const h = await env.client.workflow.start(documentBatchWorkflow, { taskQueue, workflowId, args: [{ tenantId: 't', batchId: 'b', chunkSize: 2, patches: DOCUMENT_PATCHES }] });
    const err = await h.result().then(() => undefined, (e: unknown) => e);
    const d = await h.describe();
    const markers = ((await h.fetchHistory()).events ?? []).filter((e) => e.markerRecordedEventAttributes);
    return { err, status: d.status.name, Status: d.searchAttributes.Status, markers };
  });
}

it('ends a batch whose chunk gave up: the items not rendered failed with the reason, the batch finished, Status failed, the run failed', async () => {
  let chunks = 0;
  const { activities, log } = fakes({
    async renderBatchChunk() {
      // The first chunk renders; the next meets a browser that never starts, and gives up (its attempt budget spent).
      if (++chunks === 1) return { remaining: 2, cursor: 1, done: false };
      throw new Error('browserType.launch: Failed to launch chromium');
    },
    async cancelBatch(i) { log.failed.push(i.error); return { done: 2, failed: 2 }; },
  });
  const ended = await failingBatch(activities);
  expect(chunks).toBe(2);
  // The batch's end was written (cancelBatch: the rest failed with the reason, counts, finished) with the failure's message.
  expect(log.failed).toEqual(['browserType.launch: Failed to launch chromium']);
  expect(log.finished).toBe(0);
  // The run still fails, with what made it fail (red in the UI).
  expect(ended.err).toBeInstanceOf(WorkflowFailedError);
  const cause = (ended.err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ActivityFailure);
  expect((cause as ActivityFailure).cause).toMatchObject({ type: GAVE_UP, message: 'browserType.launch: Failed to launch chromium' });
  expect(ended.status).toBe('FAILED');
  expect(ended.Status).toEqual(['failed']);
  // Started with the patch list, the run met no patch marker.
  expect(ended.markers).toHaveLength(0);
});

it('ends a batch that could not be marked running: every item failed with the reason, Status failed, the run failed', async () => {
  const { activities, log } = fakes({
    async markBatchRunning() { throw ApplicationFailure.nonRetryable('batch row locked', 'LockTimeout'); },
    async renderBatchChunk() { log.chunks++; return { remaining: 0 }; },
  });
  const ended = await failingBatch(activities);
  expect(log.chunks).toBe(0);
  expect(log.failed).toEqual(['batch row locked']);
  expect(ended.err).toBeInstanceOf(WorkflowFailedError);
  expect(ended.status).toBe('FAILED');
  expect(ended.Status).toEqual(['failed']);
});
