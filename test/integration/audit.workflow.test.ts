// The export workflow's own logic, with fake activities: success and failure paths, and its Status.
import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { AuditActivities } from '../../activities/audit';
import { auditExportWorkflow } from '../../workflows/audit';
import { AUDIT_EXPORT_PATCHES, type AuditExportResult } from '../../workflows/audit.api';
import { STATUS } from '../../workflows/search-attributes';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';

let connection: Connection;
let native: NativeConnection;
let client: Client;

beforeAll(async () => {
  connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  native = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  client = new Client({ connection });
});
afterAll(async () => {
  await connection.close();
  await native.close();
});

async function runWith(activities: Partial<AuditActivities>) {
  const taskQueue = `test-audit-${randomUUID()}`;
  const worker = await Worker.create({ connection: native, taskQueue, workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! }, activities });
  return worker.runUntil(async () => {
    const handle = await client.workflow.start(auditExportWorkflow, {
      taskQueue, workflowId: `test-${randomUUID()}`, args: [{ exportId: randomUUID(), tenantId: 't1', filters: {} }],
      typedSearchAttributes: [{ key: STATUS, value: 'queued' }],
    });
    const result = await handle.result();
    const desc = await handle.describe();
    return { result, status: desc.typedSearchAttributes.get(STATUS) };
  });
}

it('marks running, writes chunk by chunk from the last cursor, completes, and ends with Status ready', async () => {
  const calls: string[] = [];
  const { result, status } = await runWith({
    markAuditExportRunning: async () => { calls.push('running'); },
    writeAuditExportChunk: async (i) => {
      const rows = (i.cursor?.rows ?? 0) + 6;
      calls.push(`write:${i.cursor?.rows ?? 'start'}`);
      return { cursor: { lastId: `e${rows}`, rows, bytes: rows * 10 }, done: rows >= 12 };
    },
    finishAuditExport: async (i) => { calls.push(`complete:${i.cursor.rows}`); return { fileId: 'f1', rows: i.cursor.rows }; },
    failAuditExport: async () => { calls.push('fail'); },
  });
  expect(calls).toEqual(['running', 'write:start', 'write:6', 'complete:12']);
  expect(result).toEqual({ status: 'ready', rows: 12, fileId: 'f1' });
  expect(status).toBe('ready');
});

it('records a failure with its reason and ends with Status failed', async () => {
  let failedWith = '';
  const { result, status } = await runWith({
    markAuditExportRunning: async () => undefined,
    writeAuditExportChunk: async () => { throw ApplicationFailure.nonRetryable('disk full'); },
    finishAuditExport: async () => { throw new Error('not reached'); },
    failAuditExport: async (i) => { failedWith = i.error; },
  });
  expect(failedWith).toBe('disk full');
  expect(result).toEqual({ status: 'failed', rows: 0, error: 'disk full' });
  expect(status).toBe('failed');
});

/** An export started as the API starts one (with AUDIT_EXPORT_PATCHES); `during` acts on the run while it runs. */
async function startAsTheApi(activities: Partial<AuditActivities>, during?: (cancel: () => Promise<void>) => Promise<void>) {
  const taskQueue = `test-audit-${randomUUID()}`;
  const worker = await Worker.create({ connection: native, taskQueue, workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! }, activities });
  return worker.runUntil(async () => {
    const handle = await client.workflow.start(auditExportWorkflow, {
      taskQueue, workflowId: `test-${randomUUID()}`, args: [{ exportId: randomUUID(), tenantId: 't1', filters: {}, patches: AUDIT_EXPORT_PATCHES }],
      typedSearchAttributes: [{ key: STATUS, value: 'queued' }],
    });
    await during?.(() => handle.cancel().then(() => undefined));
    const outcome: { result?: AuditExportResult; error?: unknown } = await handle.result().then((result) => ({ result }), (error: unknown) => ({ error }));
    const desc = await handle.describe();
    const markers = ((await handle.fetchHistory()).events ?? []).filter((e) => e.markerRecordedEventAttributes);
    return { ...outcome, run: desc.status.name, status: desc.typedSearchAttributes.get(STATUS), markers };
  });
}

it('ends an export whose markAuditExportRunning gave up as failed, with its reason and Status failed', async () => {
  const calls: string[] = [];
  const ended = await startAsTheApi({
    markAuditExportRunning: async () => { calls.push('running'); throw ApplicationFailure.nonRetryable('canceling statement due to statement timeout', 'ActivityGaveUp'); },
    writeAuditExportChunk: async () => { calls.push('write'); return { cursor: null, done: true }; },
    failAuditExport: async (i) => { calls.push(`fail:${i.error}`); },
  });
  expect(calls).toEqual(['running', 'fail:canceling statement due to statement timeout']);
  expect(ended.result).toEqual({ status: 'failed', rows: 0, error: 'canceling statement due to statement timeout' });
  expect(ended.run).toBe('COMPLETED');
  expect(ended.status).toBe('failed');
  expect(ended.markers).toHaveLength(0);
});

it('ends an export cancelled in Temporal during markAuditExportRunning as failed (cancelled in Temporal), Status failed, the run cancelled', async () => {
  const calls: string[] = [];
  let started!: () => void;
  const marking = new Promise<void>((resolve) => { started = resolve; });
  let failed!: () => void;
  const failing = new Promise<void>((resolve) => { failed = resolve; });
  const ended = await startAsTheApi({
    // A long count: the cancel comes while it runs, and it runs until the export's end is written (or 30 s, if never).
    markAuditExportRunning: async () => {
      calls.push('running');
      started();
      await Promise.race([failing, new Promise((resolve) => setTimeout(resolve, 30_000))]);
    },
    writeAuditExportChunk: async () => { calls.push('write'); return { cursor: null, done: true }; },
    failAuditExport: async (i) => { calls.push(`fail:${i.error}`); failed(); },
  }, async (cancel) => { await marking; await cancel(); });
  expect(calls).toEqual(['running', 'fail:cancelled in Temporal']);
  expect(ended.error).toBeInstanceOf(WorkflowFailedError);
  expect((ended.error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect(ended.run).toBe('CANCELLED');
  expect(ended.status).toBe('failed');
  expect(ended.markers).toHaveLength(0);
});
