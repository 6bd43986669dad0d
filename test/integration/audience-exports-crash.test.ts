// A worker killed in the middle of a subscriber export: the next worker writes the CSV again from the start, and it
// is stored once, with every subscriber exactly once and one completion in the audit log.
import { parse } from 'csv-parse/sync';
import { v7 as uuidv7 } from 'uuid';
import { AuditEvent, StoredFile, Subscriber, SubscriberExport } from '../../db';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { waitFor } from '../helpers/wait';
import { killAllWorkers, killWorker, spawnWorker } from '../helpers/worker-process';

let app: TestApp;

const PAGE = 25;
// Exports run on the imports queue; pages of 25 with a pause make the export last several seconds.
const startWorker = () => spawnWorker({ WORKER_QUEUES: 'imports', AUDIT_EXPORT_PAGE_SIZE: String(PAGE), AUDIT_EXPORT_PAGE_PAUSE_MS: '150' });

beforeAll(async () => { app = await startTestApp(); });
afterAll(async () => {
  killAllWorkers();
  await app.close();
});

it('is written again after SIGKILL, stored once, with every subscriber exactly once', async () => {
  const { key, tenant } = await buildCaller(['audience.*']);
  const total = 1000;
  await Subscriber.bulkCreate(Array.from({ length: total }, (_, i) => ({
    tenantId: tenant.id, id: uuidv7(), email: `c${i}@example.com`, name: `C ${i}`, attributes: { n: i },
  })));
  const first = startWorker();
  const started = await app.call('post', '/v1/subscriber-exports', key).send({}).expect(202);

  // Killed part-way: pages written, not all.
  await waitFor(async () => ((await SubscriberExport.findByPk(started.body.id))?.rowsWritten ?? 0) >= 4 * PAGE, { what: 'an export part-way', timeoutMs: 60_000, intervalMs: 50 });
  await killWorker(first);
  const frozen = (await SubscriberExport.findByPk(started.body.id))!;
  expect(frozen.status).toBe('running');
  expect(frozen.rowsWritten).toBeLessThan(total);
  expect(await StoredFile.count({ where: { tenantId: tenant.id, originKey: `subscriber-export:${started.body.id}` } })).toBe(0);

  startWorker();
  const done = await waitFor(async () => {
    const res = await app.call('get', `/v1/subscriber-exports/${started.body.id}`, key).expect(200);
    return res.body.status === 'ready' && res.body;
  }, { what: 'export finished after restart', timeoutMs: 90_000 });

  const rows = parse((await app.call('get', done.downloadUrl, key).expect(200)).text, { columns: true }) as Record<string, string>[];
  expect(rows).toHaveLength(total);
  expect(new Set(rows.map((r) => r.email)).size).toBe(total);
  expect(new Set(rows.map((r) => r['attributes.n']))).toEqual(new Set(Array.from({ length: total }, (_, i) => String(i))));
  expect(done).toMatchObject({ totalRows: total, rowsWritten: total });
  // The activity really was retried, and the export stored one file and completed once.
  const history = await app.client.workflow.getHandle(done.workflowId).fetchHistory();
  const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
  expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
  expect(await StoredFile.count({ where: { tenantId: tenant.id, originKey: `subscriber-export:${done.id}` } })).toBe(1);
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'audience.export.completed' } })).toBe(1);
}, 180_000);

it('cancelled in the Temporal UI mid-way: the export ends failed, not running, and stores no file', async () => {
  const { key, tenant } = await buildCaller(['audience.*']);
  const total = 1000;
  await Subscriber.bulkCreate(Array.from({ length: total }, (_, i) => ({
    tenantId: tenant.id, id: uuidv7(), email: `x${i}@example.com`, name: `X ${i}`,
  })));
  startWorker();
  const started = await app.call('post', '/v1/subscriber-exports', key).send({}).expect(202);
  await waitFor(async () => ((await SubscriberExport.findByPk(started.body.id))?.rowsWritten ?? 0) >= 2 * PAGE, { what: 'an export part-way', timeoutMs: 60_000, intervalMs: 50 });

  // What the UI's "Request cancellation" does.
  const handle = app.client.workflow.getHandle(started.body.workflowId);
  await handle.cancel();
  await expect(handle.result()).rejects.toThrow();
  expect((await handle.describe()).status.name).toBe('CANCELLED');

  const shown = (await app.call('get', `/v1/subscriber-exports/${started.body.id}`, key).expect(200)).body;
  expect(shown).toMatchObject({ status: 'failed', error: 'cancelled in Temporal' });
  expect(shown.rowsWritten).toBeLessThan(total);
  await app.call('get', `/v1/subscriber-exports/${started.body.id}/download`, key).expect(409);
  expect((await handle.describe()).searchAttributes.Status).toEqual(['failed']);
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'audience.export.failed' } })).toBe(1);
  // The input named its code's patch (the cancelled write's): no patch marker in the history.
  expect(((await handle.fetchHistory()).events ?? []).filter((e) => e.markerRecordedEventAttributes)).toEqual([]);
  // The activity stops at its next page once the cancel reaches its heartbeat, and stores nothing.
  await new Promise((r) => setTimeout(r, 2000));
  expect(await StoredFile.count({ where: { tenantId: tenant.id, originKey: `subscriber-export:${started.body.id}` } })).toBe(0);
  expect((await SubscriberExport.findByPk(started.body.id))!.status).toBe('failed');
}, 120_000);
