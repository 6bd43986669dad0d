// The flow's read-model write (one statement per sign): state, history and audit together; a retry
// writes nothing twice; an older version never overwrites a newer one; a flow without its row fails.
import { randomUUID } from 'node:crypto';
import { createApprovalActivities } from '../../activities/approvals';
import { ApprovalEvent, ApprovalFlow, AuditEvent, createSequelize } from '../../db';
import type { FlowState, HistoryEvent } from '../../workflows/approvals.api';
import { buildTenant } from '../helpers/factories';

const sequelize = createSequelize(process.env.DATABASE_URL!);
afterAll(() => sequelize.close());
const { persistFlow } = createApprovalActivities({ email: { send: async () => ({ messageId: 'unused' }), close: async () => {} }, linkSecret: 'x'.repeat(32), publicUrl: 'http://docket.test' });

const approvers = [randomUUID(), randomUUID(), randomUUID()];
const stateAt = (flowId: string, version: number, signedBy: string[]): FlowState => ({
  flowId, status: 'pending', currentStage: 0, version,
  stages: [{ name: 'Team', status: 'active', approvers, signatures: signedBy.map((userId) => ({ userId, decision: 'approve', at: new Date().toISOString(), via: 'api' })) }],
} as FlowState);
const signed = (seq: number, actorId: string): HistoryEvent => ({ seq, type: 'signed', stage: 0, actorId, decision: 'approve', at: new Date().toISOString() });

async function pendingFlow() {
  const tenant = await buildTenant();
  const id = randomUUID();
  await ApprovalFlow.create({
    id, tenantId: tenant.id, objectType: 'purchase_order', objectId: `po-${id}`, title: 'PO', templateId: randomUUID(), templateVersion: 1,
    requesterId: randomUUID(), status: 'pending', currentStage: 0, state: stateAt(id, -1, []), stateVersion: -1, pendingApprovers: [], context: {},
    workflowId: `approvals:${tenant.id}:${id}`, completedAt: null,
  });
  return { tenantId: tenant.id, flowId: id };
}

it('given a sign, writes the state, the history event and the audit row; the retried write adds nothing', async () => {
  const f = await pendingFlow();
  const write = { ...f, state: stateAt(f.flowId, 3, [approvers[0]]), pendingApprovers: approvers.slice(1), events: [signed(3, approvers[0])] };
  await persistFlow(write);
  await persistFlow(write);
  const row = (await ApprovalFlow.findByPk(f.flowId))!;
  expect(row).toMatchObject({ stateVersion: 3, status: 'pending', pendingApprovers: approvers.slice(1), completedAt: null });
  expect(row.state.stages[0].signatures.map((s) => s.userId)).toEqual([approvers[0]]);
  expect(await ApprovalEvent.count({ where: { flowId: f.flowId } })).toBe(1);
  const audit = await AuditEvent.findAll({ where: { entityId: f.flowId } });
  expect(audit.map((a) => [a.action, a.actorId, a.workflowId])).toEqual([['approvals.flow.signed', approvers[0], `approvals:${f.tenantId}:${f.flowId}`]]);
});

it('given a newer version already written, an older write keeps it but still records its events', async () => {
  const f = await pendingFlow();
  await persistFlow({ ...f, state: stateAt(f.flowId, 4, [approvers[0], approvers[1]]), pendingApprovers: [approvers[2]], events: [signed(4, approvers[1])] });
  await persistFlow({ ...f, state: stateAt(f.flowId, 3, [approvers[0]]), pendingApprovers: approvers.slice(1), events: [signed(3, approvers[0])] });
  const row = (await ApprovalFlow.findByPk(f.flowId))!;
  expect(row.stateVersion).toBe(4);
  expect(row.pendingApprovers).toEqual([approvers[2]]);
  expect((await ApprovalEvent.findAll({ where: { flowId: f.flowId }, order: [['seq', 'ASC']] })).map((e) => e.seq)).toEqual([3, 4]);
});

it('given a flow without its row, the write fails (with or without events) and writes nothing', async () => {
  const tenantId = (await buildTenant()).id;
  const flowId = randomUUID();
  await expect(persistFlow({ tenantId, flowId, state: stateAt(flowId, 1, []), pendingApprovers: approvers, events: [] })).rejects.toThrow(/has no row/);
  await expect(persistFlow({ tenantId, flowId, state: stateAt(flowId, 2, [approvers[0]]), pendingApprovers: approvers, events: [signed(2, approvers[0])] })).rejects.toThrow();
  expect(await AuditEvent.count({ where: { entityId: flowId } })).toBe(0);
});
