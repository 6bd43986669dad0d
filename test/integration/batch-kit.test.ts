// The batch kit on its own (a probe workflow and activity in test/fixtures/batch-kit): a retried chunk
// resumes from its heartbeated cursor, after a thrown error and after a SIGKILLed worker; a long batch
// continues as new within its history budget; pause holds between chunks and resume goes on; cancel
// stops between chunks and leaves exact counts.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { Pool } from 'pg';
import { PROBE_TABLES, probeActivities, ProbeInput } from '../fixtures/batch-kit/activities';
import { batchKitProbe, cancelUpdate, pauseUpdate, resumeUpdate } from '../fixtures/batch-kit/workflows';
import { STATUS } from '../../workflows/search-attributes';
import { waitFor } from '../helpers/wait';
import { killAllWorkers, killWorker, spawnWorker } from '../helpers/worker-process';

jest.setTimeout(180_000);
const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
let connection: Connection;
let native: NativeConnection;
let client: Client;
let bundlePath: string;

beforeAll(async () => {
  await pool.query(PROBE_TABLES);
  connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  native = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  client = new Client({ connection });
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../fixtures/batch-kit/workflows'), logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } });
  bundlePath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'batch-kit-')), 'bundle.js');
  fs.writeFileSync(bundlePath, code);
});
afterAll(async () => {
  killAllWorkers();
  await connection?.close();
  await native?.close();
  await pool.end();
});

type Probe = Omit<ProbeInput, 'run'>;

/** Starts the probe on a fresh task queue; `body` runs while an in-process worker serves it (unless `worker: false`). */
async function withProbe<T>(probe: Probe, body: (h: WorkflowHandle<typeof batchKitProbe>, run: string, taskQueue: string) => Promise<T>, opts: { worker?: boolean } = {}): Promise<T> {
  const run = randomUUID();
  const taskQueue = `batch-kit-${run}`;
  const start = () => client.workflow.start(batchKitProbe, {
    taskQueue, workflowId: `batch-kit:${run}`, args: [{ run, ...probe }], typedSearchAttributes: [{ key: STATUS, value: 'queued' }],
  });
  if (opts.worker === false) return body(await start(), run, taskQueue);
  const worker = await Worker.create({ connection: native, taskQueue, workflowBundle: { codePath: bundlePath }, activities: probeActivities(pool) });
  return worker.runUntil(async () => body(await start(), run, taskQueue));
}

const itemsOf = async (run: string) => (await pool.query<{ item: number; done_by_attempt: number }>('SELECT item, done_by_attempt FROM batch_probe_items WHERE run = $1 ORDER BY item', [run])).rows;
const pagesOf = async (run: string) => (await pool.query<{ attempt: number; first_item: number }>('SELECT attempt, first_item FROM batch_probe_pages WHERE run = $1 ORDER BY at', [run])).rows;
const progressOf = async (run: string) => (await pool.query<{ cursor: number | null; control: string | null }>('SELECT cursor, control FROM batch_probe_progress WHERE run = $1', [run])).rows[0];
const statusOf = async (h: WorkflowHandle) => (await h.describe()).typedSearchAttributes.get(STATUS);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

it('retries a chunk that died after a heartbeat from its cursor, not from the start', async () => {
  // One chunk for the whole batch: without the heartbeated cursor, the retry would start again at item 0.
  await withProbe({ total: 60, pageSize: 5, pageMs: 20, failFirstAttemptAfterPages: 4 }, async (h, run) => {
    expect(await h.result()).toEqual({ cancelled: false, cursor: 59 });
    const pages = await pagesOf(run);
    expect(pages.filter((p) => p.attempt === 1).map((p) => p.first_item)).toEqual([0, 5, 10, 15]);
    // The attempt died in its 4th page (items 15-19): the retry began at the cursor of the last heartbeat,
    // after the 3rd page, so only the page that was running is run again.
    expect(pages.filter((p) => p.attempt === 2).map((p) => p.first_item)).toEqual([15, 20, 25, 30, 35, 40, 45, 50, 55]);
    const items = await itemsOf(run);
    expect(items.map((i) => i.item)).toEqual(range(60));
    // That page's items were done once, by the attempt that died (its effects are keyed by item).
    expect(items.filter((i) => i.done_by_attempt === 1).map((i) => i.item)).toEqual(range(20));
  });
});

it('resumes from the heartbeated cursor after its worker is SIGKILLed mid-chunk: every item once', async () => {
  await withProbe({ total: 400, pageSize: 4, pageMs: 60 }, async (h, run, taskQueue) => {
    const worker = () => spawnWorker({ BATCH_KIT_BUNDLE: bundlePath, BATCH_KIT_QUEUE: taskQueue }, require.resolve('../fixtures/batch-kit/worker'));
    const first = worker();
    // Past the first heartbeat throttle interval (0.8 × 3 s), so the server holds a cursor beyond the start.
    const before = await waitFor(async () => {
      const n = (await itemsOf(run)).length;
      return n >= 240 && n;
    }, { what: 'most of the batch done', timeoutMs: 60_000, intervalMs: 50 });
    await killWorker(first);
    const doneWhenKilled = (await itemsOf(run)).length;
    expect(doneWhenKilled).toBeLessThan(400);
    worker();
    expect(await h.result()).toEqual({ cancelled: false, cursor: 399 });

    const items = await itemsOf(run);
    expect(items.map((i) => i.item)).toEqual(range(400));
    const retryPages = (await pagesOf(run)).filter((p) => p.attempt > 1);
    // Resumed, not restarted: the retry's first page starts past what the first worker had heartbeated
    // (the server keeps the newest heartbeat it received, at most 0.8 × the heartbeat timeout old).
    expect(retryPages[0].first_item).toBeGreaterThan(0);
    const redone = doneWhenKilled - retryPages[0].first_item;
    expect(redone).toBeLessThan(before);
    // The items the retry did are exactly the rest: its pages are consecutive from there.
    expect(retryPages.map((p) => p.first_item)).toEqual(range(retryPages.length).map((k) => retryPages[0].first_item + 4 * k));
  }, { worker: false });
});

it('continues as new past its history budget: every run stays within it, every item once', async () => {
  const budget = 60;
  await withProbe({ total: 40, pageSize: 1, maxPages: 1, pageMs: 0, historyBudget: budget }, async (h, run) => {
    expect(await h.result()).toEqual({ cancelled: false, cursor: 39 });
    const lengths: number[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = '${h.workflowId}'` })) {
      lengths.push((await client.workflow.getHandle(h.workflowId, w.runId).fetchHistory()).events!.length);
    }
    // 40 chunks of ~6 events each would make one history of ~250 events.
    expect(lengths.length).toBeGreaterThanOrEqual(4);
    // A run continues as new before the first chunk that would start past the budget.
    for (const n of lengths) expect(n).toBeLessThanOrEqual(budget + 8);
    expect((await itemsOf(run)).map((i) => i.item)).toEqual(range(40));
    expect((await pagesOf(run)).length).toBe(40);
  });
});

it('pauses between chunks, holds, and resumes where it stopped; Status and read model follow', async () => {
  await withProbe({ total: 120, pageSize: 1, maxPages: 1, pageMs: 30 }, async (h, run) => {
    await waitFor(async () => (await itemsOf(run)).length >= 10, { what: 'some items done' });
    await h.executeUpdate(pauseUpdate);
    // Once the pause is answered the loop stands between chunks: no chunk is in flight or scheduled, and
    // none is while paused (a later command is what wakes it).
    const atPause = (await itemsOf(run)).length;
    expect(await statusOf(h)).toBe('paused');
    expect((await progressOf(run)).control).toBe('paused');
    expect((await h.describe()).raw.pendingActivities ?? []).toHaveLength(0);
    // A second pause is refused synchronously.
    const refused = await h.executeUpdate(pauseUpdate).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(((refused as WorkflowUpdateFailedError).cause as ApplicationFailure).type).toBe('BATCH_PAUSED');
    expect((await itemsOf(run)).length).toBe(atPause);

    await h.executeUpdate(resumeUpdate);
    expect(await statusOf(h)).toBe('running');
    expect(await h.result()).toEqual({ cancelled: false, cursor: 119 });
    expect((await itemsOf(run)).map((i) => i.item)).toEqual(range(120));
    // Resumed where it stopped: each item's page ran once.
    expect((await pagesOf(run)).map((p) => p.first_item)).toEqual(range(120));
    // A finished batch takes no more commands.
    expect(await h.executeUpdate(resumeUpdate).catch((e: unknown) => e)).toBeInstanceOf(Error);
  });
});

it('cancels between chunks: the counts when cancel answers are the final ones', async () => {
  await withProbe({ total: 300, pageSize: 2, maxPages: 1, pageMs: 30 }, async (h, run) => {
    await waitFor(async () => (await itemsOf(run)).length >= 20, { what: 'some items done' });
    await h.executeUpdate(cancelUpdate);
    const atCancel = await itemsOf(run);
    const progress = await progressOf(run);
    expect(progress.control).toBe('cancelled');
    // The read model's cursor is the last item done, and nothing is done after the answer.
    expect(progress.cursor).toBe(atCancel.length - 1);
    // No chunk was in flight when the cancel answered, and the workflow ends without another.
    expect((await h.describe()).raw.pendingActivities ?? []).toHaveLength(0);
    const result = await h.result();
    expect(result).toEqual({ cancelled: true, cursor: atCancel.length - 1 });
    expect(await itemsOf(run)).toEqual(atCancel);
    expect(atCancel.length).toBeLessThan(300);
    expect(await statusOf(h)).toBe('cancelled');
  });
});

it('cancels a paused batch at once', async () => {
  await withProbe({ total: 300, pageSize: 1, maxPages: 1, pageMs: 30 }, async (h, run) => {
    await waitFor(async () => (await itemsOf(run)).length >= 5, { what: 'some items done' });
    await h.executeUpdate(pauseUpdate);
    const atPause = (await itemsOf(run)).length;
    await h.executeUpdate(cancelUpdate);
    expect(await h.result()).toEqual({ cancelled: true, cursor: atPause - 1 });
    expect((await itemsOf(run)).length).toBe(atPause);
  });
});
