// The cluster topology itself (npm run test:cluster): an approval started through API process 1 is signed
// through API process 2, and when the worker process running it is SIGKILLed mid-way the other worker
// process finishes it — on the real Temporal server, Postgres persistence and SQL visibility.
import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import OpenAPIBackend, { type Document } from 'openapi-backend';
import { Sequelize } from 'sequelize';
import request from 'supertest';
import { loadContract } from '../../api/contract';
import { createSequelize } from '../../db';
import { buildProcurementTenant, type ProcurementTenant } from '../helpers/approvals';
import { ContractChecker } from '../helpers/contract';
import { binary, pdfPages } from '../helpers/pdf';
import { waitFor } from '../helpers/wait';

interface ClusterInfo {
  postgres: { databaseUrl: string };
  temporal: { address: string; namespace: string; version: string };
  apis: { name: string; url: string; pid: number }[];
  workers: { name: string; pid: number }[];
  fileStore: { kind: string; endpoint?: string; bucket?: string };
}

let info: ClusterInfo;
let sequelize: Sequelize;
let connection: Connection;
let client: Client;
let checker: ContractChecker;
let t: ProcurementTenant;

/** A request to one API process, its response checked against openapi.yaml. */
function call(api: number, method: 'get' | 'post', url: string, key: string): request.Test {
  return request(info.apis[api].url)[method](url).set('X-API-Key', key).expect((res) => checker.check(method.toUpperCase(), url, res));
}

beforeAll(async () => {
  const file = process.env.DOCKET_CLUSTER_INFO;
  if (!file) throw new Error('DOCKET_CLUSTER_INFO is unset: run this file with `npm run test:cluster`');
  info = JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterInfo;
  expect(info.apis).toHaveLength(2);
  expect(info.workers).toHaveLength(2);
  // The fixtures write through this Sequelize: the cluster's own Docket database, not the suite's.
  sequelize = createSequelize(info.postgres.databaseUrl);
  t = await buildProcurementTenant();
  connection = await Connection.connect({ address: info.temporal.address });
  client = new Client({ connection, namespace: info.temporal.namespace });
  const api = new OpenAPIBackend({ definition: loadContract().definition as unknown as Document, quick: true, validate: false });
  await api.init();
  checker = new ContractChecker(api);
});

afterAll(async () => {
  await connection?.close();
  await sequelize?.close();
});

/** The pid of the worker process that ran the workflow's latest workflow task (its identity is `pid@host`). */
async function lastWorkflowTaskPid(workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const done = (history.events ?? []).filter((e) => e.workflowTaskCompletedEventAttributes).at(-1);
  return Number(done!.workflowTaskCompletedEventAttributes!.identity!.split('@')[0]);
}

// Before the test below, which kills a worker: both workers serve these.
it('keeps files in S3: an upload through API 1 downloads byte-identical through API 2, and a worker imports it from the bucket', async () => {
  expect(info.fileStore.kind).toBe('s3');
  const csv = 'E-mail,Name\n' + Array.from({ length: 500 }, (_, i) => `member${i}@cluster.example,Member ${i}\n`).join('');
  const up = await call(0, 'post', '/v1/files?filename=members.csv', t.adminKey).set('Content-Type', 'text/csv').send(Buffer.from(csv)).expect(201);
  const down = await call(1, 'get', up.body.downloadUrl, t.adminKey).buffer(true).parse((res, done) => {
    const parts: Buffer[] = [];
    res.on('data', (c: Buffer) => parts.push(c));
    res.on('end', () => done(null, Buffer.concat(parts)));
  }).expect(200);
  expect((down.body as Buffer).toString()).toBe(csv);

  const run = await call(1, 'post', '/v1/imports', t.adminKey).send({ fileId: up.body.id, target: 'subscribers', columns: [{ source: 'E-mail', field: 'email' }, { source: 'Name', field: 'name' }] }).expect(202);
  const done = await waitFor(async () => {
    const r = await call(0, 'get', `/v1/imports/${run.body.id}`, t.adminKey).expect(200);
    return ['finished', 'failed', 'cancelled'].includes(r.body.phase) && r.body;
  }, { what: 'the import ended (read through API 1)', timeoutMs: 90_000 });
  expect([done.phase, done.counts.created, done.counts.rejected]).toEqual(['finished', 500, 0]);
});

it('keeps rendered documents in S3: a PDF a cluster worker renders is downloaded through both API processes', async () => {
  const code = `cluster-letter-${Date.now()}`;
  await call(0, 'post', '/v1/document-templates', t.adminKey).send({ code, name: 'Letter', variables: 'strict', parts: { base: '<h1>Dear {{ name }}</h1><p>Order {{ order }}</p>' } }).expect(201);
  const doc = await call(1, 'post', '/v1/documents', t.adminKey).send({ templateCode: code, data: { name: 'Ada Lovelace', order: 'PO-1843' }, fileName: 'letter.pdf' }).expect(202);
  const ready = await waitFor(async () => {
    const d = await call(0, 'get', `/v1/documents/${doc.body.id}`, t.adminKey).expect(200);
    return ['ready', 'failed'].includes(d.body.status) && d.body;
  }, { what: 'the document rendered', timeoutMs: 90_000 });
  expect(ready.status).toBe('ready');
  // Stored by the worker in the bucket (the cluster's only file store) and read back through each API process.
  for (const api of [0, 1]) {
    const pdf = await call(api, 'get', ready.downloadUrl, t.adminKey).buffer(true).parse(binary).expect(200);
    expect(pdfPages(pdf.body as Buffer).join('\n')).toMatch(/Dear Ada Lovelace[\s\S]*Order PO-1843/);
  }
});

it('runs on the real server: started through API 1, signed through API 2, finished by the other worker after one is SIGKILLed', async () => {
  const info1 = (await connection.workflowService.getSystemInfo({})).serverVersion;
  expect(info1).toBe(info.temporal.version.replace(/^v/, ''));

  await call(0, 'post', '/v1/approval-templates', t.adminKey).send({
    name: 'Purchases', objectType: 'purchase_order', condition: 'total > 1000',
    stages: [
      { name: 'Finance', approvers: { roles: ['finance'] }, rule: 'quorum', quorum: 2 },
      { name: 'CFO', approvers: { roles: ['cfo'] }, rule: 'any' },
    ],
  }).expect(201);
  const po = (await call(0, 'post', '/v1/purchase-orders', t.buyer.key).send({
    number: 'PO-CLUSTER-1', supplier: 'Contoso', currency: 'EUR', lines: [{ description: 'Laptop', quantity: 2, unitPrice: 2500 }],
  }).expect(201)).body;
  const submitted = await call(0, 'post', `/v1/purchase-orders/${po.id}/submit`, t.buyer.key).expect(202);
  const flowId = submitted.body.approvalFlowId as string;

  // API 2 sees the flow API 1 started, once a worker has opened its first stage.
  const opened = await waitFor(async () => {
    const res = await call(1, 'get', `/v1/approval-flows/${flowId}`, t.adminKey).expect(200);
    return res.body.stages[0].status === 'active' && res.body;
  }, { what: 'stage 0 open (read through API 2)' });
  const workflowId = opened.workflowId as string;

  // The quorum: one Update through each API process.
  await call(1, 'post', `/v1/approval-flows/${flowId}/sign`, t.fin[0].key).send({ decision: 'approve' }).expect(200);
  const second = await call(0, 'post', `/v1/approval-flows/${flowId}/sign`, t.fin[1].key).send({ decision: 'approve' }).expect(200);
  expect(second.body.stages[0].status).toBe('approved');
  expect(second.body.currentStage).toBe(1);

  // The worker process that holds the flow now (the last to run its workflow task) dies mid-way.
  const pids = info.workers.map((w) => w.pid);
  const holder = await lastWorkflowTaskPid(workflowId);
  expect(pids).toContain(holder);
  const other = pids.find((p) => p !== holder)!;
  process.kill(holder, 'SIGKILL');
  await waitFor(async () => { try { process.kill(holder, 0); return false; } catch { return true; } }, { what: 'the worker gone' });

  // The CFO signs through API 2: the surviving worker replays the flow and completes it.
  const last = await call(1, 'post', `/v1/approval-flows/${flowId}/sign`, t.chief.key).send({ decision: 'approve' }).expect(200);
  expect(last.body.status).toBe('approved');
  const done = await waitFor(async () => {
    const res = await call(0, 'get', `/v1/purchase-orders/${po.id}`, t.buyer.key).expect(200);
    return res.body.state === 'approved' && res.body;
  }, { what: 'the order approved (read through API 1)' });
  expect(done.state).toBe('approved');
  expect(await lastWorkflowTaskPid(workflowId)).toBe(other);
  await waitFor(async () => (await client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED', { what: 'the workflow completed' });

  // SQL visibility answers queries on Docket's search attributes.
  const listed: string[] = [];
  await waitFor(async () => {
    listed.length = 0;
    for await (const w of client.workflow.list({ query: `EntityId = '${flowId}' AND TenantId = '${t.tenant.id}'` })) listed.push(w.workflowId);
    return listed.length === 1;
  }, { what: 'the flow listed by its search attributes' });
  expect(listed).toEqual([workflowId]);
});
