// A worker killed in the middle of an export: another worker resumes it from the heartbeat cursor,
// and the CSV holds every event exactly once.
import { parse } from 'csv-parse/sync';
import { AuditEvent, AuditExport } from '../../db';
import { buildCaller } from '../helpers/factories';
import { startTestApp, TestApp } from '../helpers/app';
import { waitFor } from '../helpers/wait';
import { killAllWorkers, killWorker, spawnWorker } from '../helpers/worker-process';

let app: TestApp;

const startWorker = () => spawnWorker({ AUDIT_EXPORT_PAGE_SIZE: '25', AUDIT_EXPORT_PAGE_PAUSE_MS: '150' });

beforeAll(async () => { app = await startTestApp(); });
afterAll(async () => {
  killAllWorkers();
  await app.close();
});

it('resumes after SIGKILL with nothing lost and nothing written twice', async () => {
  const { key, tenant } = await buildCaller(['audit.*']);
  const total = 1000;
  await AuditEvent.bulkCreate(Array.from({ length: total }, (_, i) => ({
    tenantId: tenant.id, actorType: 'system' as const, actorId: null, action: 'files.file.uploaded' as const, entityType: 'file',
    entityId: `f-${i}`, before: null, after: { i }, requestId: null, workflowId: null, eventKey: null,
  })));
  const first = startWorker();
  const started = await app.call('post', '/v1/audit-exports', key).send({ entityType: 'file' }).expect(202);

  // Kill the worker once a few pages are written: mid-export, not before, not after.
  const partial = await waitFor<number>(async () => {
    const x = await AuditExport.findByPk(started.body.id);
    return x !== null && x.rowsWritten >= 100 && x.rowsWritten < total ? x.rowsWritten : undefined;
  }, { what: 'export part-way', timeoutMs: 60_000, intervalMs: 50 });
  await killWorker(first);
  const frozen = (await AuditExport.findByPk(started.body.id))!;
  expect(frozen.status).toBe('running');
  expect(frozen.rowsWritten).toBeGreaterThanOrEqual(partial);

  startWorker();
  const done = await waitFor(async () => {
    const res = await app.call('get', `/v1/audit-exports/${started.body.id}`, key).expect(200);
    return res.body.status === 'ready' && res.body;
  }, { what: 'export finished after restart', timeoutMs: 90_000 });

  const csv = await app.call('get', done.downloadUrl, key).expect(200);
  const rows = parse(csv.text, { columns: true }) as Record<string, string>[];
  expect(rows).toHaveLength(total);
  expect(new Set(rows.map((r) => r.id)).size).toBe(total);
  expect(done.rowsWritten).toBe(total);
  // The activity really was retried (attempt 2), and resumed rather than restarted: the second
  // attempt began from the cursor the first one heartbeated.
  const history = await app.client.workflow.getHandle(done.workflowId).fetchHistory();
  const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
  expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'audit.export.completed' } })).toBe(1);
}, 180_000);
