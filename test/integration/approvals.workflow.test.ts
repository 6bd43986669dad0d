// The approval flow workflow alone, with fake activities, on the time-skipping test server: every
// stage rule, refusals, and reminder → escalation → expiry across days in milliseconds.
import { randomUUID } from 'node:crypto';
import { WorkflowUpdateStage } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { ApprovalActivities } from '../../activities/approvals';
import { freePort, RunningTemporal, startTemporalDevServer } from '../../scripts/stack';
import { waitFor } from '../helpers/wait';
import { approvalFlowWorkflow } from '../../workflows/approvals';
import { OBJECT_ID } from '../../workflows/search-attributes';
import { APPROVAL_PATCHES, ApprovalFlowInput, cancelUpdate, SignCommand, FlowState, notificationQueueOf, removeSignatureUpdate, signUpdate, StageDef, TemplateDef } from '../../workflows/approvals.api';
import { timeSkippingEnv } from '../helpers/time-skipping';
import { refusal } from '../helpers/updates';

jest.setTimeout(60_000);
// Rules run on the run's shared dev server; timer tests each get a fresh time-skipping server, since
// one test's leftover work would hold a shared clock.
let env: TestWorkflowEnvironment;


beforeAll(async () => {
  env = await TestWorkflowEnvironment.createFromExistingServer({ address: process.env.TEMPORAL_ADDRESS });
});
afterAll(() => env?.teardown());

/** Role members for the fake resolveApprovers. */
const ROLES: Record<string, string[]> = { finance: ['f1', 'f2', 'f3'], cfo: ['c1'], board: ['b1', 'b2'] };

function fakeActivities() {
  const log = { notified: [] as { kind: string; stage: number; userIds: string[] }[], watched: [] as string[], persisted: [] as FlowState[], finished: [] as string[] };
  const activities: ApprovalActivities = {
    async resolveApprovers(i) { return [...new Set([...i.users, ...i.roles.flatMap((r) => ROLES[r] ?? [])])].sort(); },
    async persistFlow(i) { log.persisted.push(JSON.parse(JSON.stringify(i.state))); },
    async notifyApprovers(i) { log.notified.push({ kind: i.kind, stage: i.stage, userIds: i.userIds }); return i.userIds.length; },
    async notifyRequestWatchers(i) { log.watched.push(i.flowId); return 0; },
    async flowFinished(i) { log.finished.push(i.status); },
  };
  return { activities, log };
}

const stageOf = (over: Partial<StageDef>): StageDef => ({ name: 'Finance', approvers: { users: [], roles: ['finance'] }, rule: 'all', rejectPolicy: 'immediate', ...over });

async function withFlow(
  def: Partial<TemplateDef> & { stages: StageDef[] }, body: (h: Awaited<ReturnType<typeof env.client.workflow.start<typeof approvalFlowWorkflow>>>, log: ReturnType<typeof fakeActivities>['log']) => Promise<void>,
  requester = { id: 'req', roles: [] as string[] }, over: Partial<ApprovalFlowInput> = {}, { on = env, fakes = fakeActivities() }: { on?: TestWorkflowEnvironment; fakes?: ReturnType<typeof fakeActivities> } = {},
) {
  const { activities, log } = fakes;
  const taskQueue = `wf-approvals-${randomUUID()}`;
  const worker = await Worker.create({ connection: on.nativeConnection, taskQueue, workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! }, activities });
  const input: ApprovalFlowInput = {
    flowId: randomUUID(), tenantId: 't', objectType: 'purchase_order', objectId: 'po-1', title: 'PO 1', requester,
    template: { id: 'tpl', version: 1 }, definition: { allowSelfApproval: false, autoApproveRoles: [], ...def },
    approvers: def.stages.map((s) => [...new Set([...s.approvers.users, ...s.approvers.roles.flatMap((r) => ROLES[r] ?? [])])].sort()), ...over,
  };
  // Emails go to the flow queue's notification queue: served here by the same fake activities.
  const notifyWorker = await Worker.create({ connection: on.nativeConnection, taskQueue: notificationQueueOf(taskQueue), activities });
  await notifyWorker.runUntil(() => worker.runUntil(async () => {
    const handle = await on.client.workflow.start(approvalFlowWorkflow, { taskQueue, workflowId: `approvals:t:${input.flowId}`, args: [input] });
    try {
      await body(handle, log);
    } finally {
      // A flow left open would hold the shared test server's clock (its queue has no worker after this).
      await handle.terminate('test over').catch(() => undefined);
    }
  }));
}

const sign = (userId: string, decision: 'approve' | 'reject' = 'approve', comment?: string, stage?: number): { args: [SignCommand] } =>
  ({ args: [{ userId, roles: [], decision, comment: comment ?? (decision === 'reject' ? 'no' : undefined), via: 'api', stage }] });

describe('stage rules', () => {
  it('all: every approver must approve', async () => {
    await withFlow({ stages: [stageOf({ rule: 'all' })] }, async (h) => {
      for (const u of ['f1', 'f2']) expect((await h.executeUpdate(signUpdate, sign(u))).status).toBe('pending');
      expect((await h.executeUpdate(signUpdate, sign('f3'))).status).toBe('approved');
      expect((await h.result()).status).toBe('approved');
    });
  });

  it('any: one approval is enough', async () => {
    await withFlow({ stages: [stageOf({ rule: 'any' })] }, async (h) => {
      expect((await h.executeUpdate(signUpdate, sign('f2'))).status).toBe('approved');
    });
  });

  it('quorum counts distinct signers, then the next stage opens (sequential stages)', async () => {
    await withFlow({ stages: [stageOf({ rule: 'quorum', quorum: 2 }), stageOf({ name: 'CFO', approvers: { users: [], roles: ['cfo'] }, rule: 'any' })] }, async (h, log) => {
      const one = await h.executeUpdate(signUpdate, sign('f1'));
      expect(one.currentStage).toBe(0);
      expect(await refusal(h.executeUpdate(signUpdate, sign('f1')))).toBe('ALREADY_SIGNED');
      const two = await h.executeUpdate(signUpdate, sign('f3'));
      expect(two.currentStage).toBe(1);
      expect(two.stages[1].approvers).toEqual(['c1']);
      // The response comes once the next stage is written; its emails follow right after.
      await waitFor(async () => log.notified.filter((n) => n.kind === 'request').length === 2, { what: 'stage 1 request email' });
      expect(log.notified.filter((n) => n.kind === 'request').map((n) => n.stage)).toEqual([0, 1]);
      // The tenant's watchers of new requests are asked about once, at the start.
      expect(log.watched).toEqual([h.workflowId.split(':').pop()]);
      expect(await refusal(h.executeUpdate(signUpdate, sign('f2')))).toBe('NOT_AN_APPROVER');
      expect((await h.executeUpdate(signUpdate, sign('c1'))).status).toBe('approved');
    });
  });

  it('a quorum is never lowered to the approvers left: 3 of 3 with the requester among them is not approved by the other 2', async () => {
    // The reported "quorum of 3 approved with 2 signatures": the requester counts among the 3 approvers but may
    // not sign (self-approval off), and the old rule needed min(quorum, eligible) = 2. The API refuses to start
    // such a flow (approvals.security.test.ts); the workflow itself never approves it either.
    await withFlow({ stages: [stageOf({ rule: 'quorum', quorum: 3, approvers: { users: ['req', 'u1', 'u2'], roles: [] } })] }, async (h) => {
      for (const u of ['u1', 'u2']) await refusal(h.executeUpdate(signUpdate, sign(u)));
      const end = await h.result();
      expect(end.status).toBe('rejected');
      expect(end.stages[0].signatures.filter((x) => x.decision === 'approve').length).toBeLessThan(3);
    });
    // With three eligible approvers the third signature is the one that approves.
    await withFlow({ stages: [stageOf({ rule: 'quorum', quorum: 3 })] }, async (h) => {
      expect((await h.executeUpdate(signUpdate, sign('f1'))).status).toBe('pending');
      expect((await h.executeUpdate(signUpdate, sign('f2'))).status).toBe('pending');
      expect((await h.executeUpdate(signUpdate, sign('f3'))).status).toBe('approved');
    });
  });

  it('reject: immediate ends the flow; when_impossible waits until the quorum cannot be met', async () => {
    await withFlow({ stages: [stageOf({ rule: 'any' })] }, async (h, log) => {
      expect(await refusal(h.executeUpdate(signUpdate, { args: [{ userId: 'f1', roles: [], decision: 'reject', via: 'api' }] }))).toBe('REASON_REQUIRED');
      expect((await h.executeUpdate(signUpdate, sign('f1', 'reject', 'too much'))).status).toBe('rejected');
      await h.result();
      expect(log.finished).toEqual(['rejected']);
    });
    await withFlow({ stages: [stageOf({ rule: 'quorum', quorum: 2, rejectPolicy: 'when_impossible' })] }, async (h) => {
      expect((await h.executeUpdate(signUpdate, sign('f1', 'reject'))).status).toBe('pending');
      expect((await h.executeUpdate(signUpdate, sign('f2', 'reject'))).status).toBe('rejected');
    });
  });
});

describe('who may sign and cancel', () => {
  it('refuses self-approval unless the template allows it', async () => {
    const def = { stages: [stageOf({ approvers: { users: ['req'], roles: ['finance'] }, rule: 'any' })] };
    await withFlow(def, async (h) => {
      expect(await refusal(h.executeUpdate(signUpdate, sign('req')))).toBe('SELF_APPROVAL_FORBIDDEN');
    });
    await withFlow({ ...def, allowSelfApproval: true }, async (h) => {
      expect((await h.executeUpdate(signUpdate, sign('req'))).status).toBe('approved');
    });
  });

  it('auto-approves a requester holding an auto-approve role', async () => {
    await withFlow({ stages: [stageOf({})], autoApproveRoles: ['ceo'] }, async (h, log) => {
      expect((await h.result()).status).toBe('approved');
      expect(log.notified).toEqual([]);
    }, { id: 'boss', roles: ['ceo'] });
  });

  it('a flow started as the API starts it (input.patches) takes every patched path with no patch marker in its history', async () => {
    const markersAndUpserts = async (h: Parameters<Parameters<typeof withFlow>[1]>[0]) => {
      const { events } = await h.fetchHistory();
      return {
        patchMarkers: events!.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch').length,
        upserted: [...new Set(events!.flatMap((e) => Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {})))].sort(),
      };
    };
    // Quorum kept whole (3 of 3 needs the third), the watchers asked at the start, then a cancel closes the open stage.
    await withFlow({ stages: [stageOf({ rule: 'quorum', quorum: 3 })] }, async (h, log) => {
      expect((await h.executeUpdate(signUpdate, sign('f1'))).status).toBe('pending');
      expect((await h.executeUpdate(signUpdate, sign('f2'))).status).toBe('pending');
      const cancelled = await h.executeUpdate(cancelUpdate, { args: [{ userId: 'req', isAdmin: false, reason: 'changed my mind' }] });
      expect(cancelled.stages[0].status).toBe('cancelled');
      await h.result();
      expect(log.watched).toEqual([h.workflowId.split(':').pop()]);
      // No TemporalChangeVersion upsert and no patch marker (ObjectId is upserted because this test starts the flow
      // without it, as flows from before it were).
      expect(await markersAndUpserts(h)).toEqual({ patchMarkers: 0, upserted: ['ObjectId', 'Status'] });
    }, undefined, { patches: APPROVAL_PATCHES });
    // The same flow without the list (as flows started before it) records its patches, as it always did.
    await withFlow({ stages: [stageOf({ rule: 'quorum', quorum: 3 })] }, async (h) => {
      await h.executeUpdate(cancelUpdate, { args: [{ userId: 'req', isAdmin: false }] });
      await h.result();
      const seen = await markersAndUpserts(h);
      expect(seen.patchMarkers).toBeGreaterThanOrEqual(3);
      expect(seen.upserted).toEqual(expect.arrayContaining(['Status', 'TemporalChangeVersion']));
    });
  });

  it('lets the requester or an admin cancel, nobody else; a closed flow refuses everything', async () => {
    await withFlow({ stages: [stageOf({})] }, async (h, log) => {
      expect(await refusal(h.executeUpdate(cancelUpdate, { args: [{ userId: 'f1', isAdmin: false }] }))).toBe('NOT_ALLOWED_TO_CANCEL');
      // Sent at once after the start: it lands while the flow's first write is in flight.
      const cancelled = await h.executeUpdate(cancelUpdate, { args: [{ userId: 'req', isAdmin: false, reason: 'changed my mind' }] });
      expect(cancelled.status).toBe('cancelled');
      // The open stage ends with the flow, in the answer and in what is written.
      expect(cancelled.stages[0].status).toBe('cancelled');
      expect((await h.result()).outcome?.reason).toBe('changed my mind');
      expect(log.persisted.at(-1)).toMatchObject({ status: 'cancelled', stages: [{ status: 'cancelled' }] });
    });
  });

  it('refuses a signature meant for an earlier stage (an old email link) once the flow has moved on', async () => {
    // f1 approves in both stages: a stage-0 link must not sign stage 1.
    await withFlow({ stages: [stageOf({ rule: 'any' }), stageOf({ name: 'Again', approvers: { users: ['f1', 'c1'], roles: [] }, rule: 'all' })] }, async (h) => {
      expect((await h.executeUpdate(signUpdate, sign('f1', 'approve', undefined, 0))).currentStage).toBe(1);
      expect(await refusal(h.executeUpdate(signUpdate, sign('f1', 'approve', undefined, 0)))).toBe('STAGE_CHANGED');
      const state = await h.query('state') as FlowState;
      expect(state.stages[1].signatures).toEqual([]);
      expect((await h.executeUpdate(signUpdate, sign('f1', 'approve', undefined, 1))).stages[1].signatures).toHaveLength(1);
    });
  });

  it('a flow started without ObjectId (before that attribute) gets it, so operators find it by the object', async () => {
    await withFlow({ stages: [stageOf({})] }, async (h) => {
      await waitFor(async () => (await h.describe()).typedSearchAttributes.get(OBJECT_ID) === 'po-1', { what: 'ObjectId set by the workflow' });
      const found: string[] = [];
      await waitFor(async () => {
        for await (const wf of env.client.workflow.list({ query: `ObjectId="po-1" AND WorkflowId="${h.workflowId}"` })) found.push(wf.workflowId);
        return found.length > 0;
      }, { what: 'found by ObjectId in visibility' });
      expect(found).toEqual([h.workflowId]);
    });
  });

  it('an admin removes a signature; an earlier stage no longer satisfied reopens, and its approvers are mailed again', async () => {
    await withFlow({ stages: [stageOf({ rule: 'quorum', quorum: 2 }), stageOf({ name: 'Board', approvers: { users: [], roles: ['board'] }, rule: 'all' })] }, async (h, log) => {
      await h.executeUpdate(signUpdate, sign('f1'));
      await h.executeUpdate(signUpdate, sign('f2'));
      const atBoard = await h.executeUpdate(signUpdate, sign('b1'));
      expect(atBoard.currentStage).toBe(1);
      const reopened = await h.executeUpdate(removeSignatureUpdate, { args: [{ adminId: 'adm', userId: 'f2', stage: 0 }] });
      expect(reopened.currentStage).toBe(0);
      expect(reopened.stages[0].status).toBe('active');
      expect(reopened.stages[1]).toMatchObject({ status: 'waiting', signatures: [] });
      expect(await refusal(h.executeUpdate(removeSignatureUpdate, { args: [{ adminId: 'adm', userId: 'f3', stage: 0 }] }))).toBe('SIGNATURE_NOT_FOUND');
      // Those who still have to sign the reopened stage are mailed again (f1's signature stands).
      await waitFor(async () => log.notified.some((n) => n.kind === 'reopened'), { what: 'reopened stage mailed' });
      const again = log.notified.filter((n) => n.kind === 'reopened');
      expect(again).toHaveLength(1);
      expect(again[0].stage).toBe(0);
      expect(again[0].userIds.sort()).toEqual(reopened.stages[0].approvers.filter((u) => u !== 'f1').sort());
    });
  });
});

describe('timers (time skipping)', () => {
  let shared: TestWorkflowEnvironment;
  beforeAll(() => { shared = env; });
  beforeEach(async () => { env = await timeSkippingEnv(); });
  afterEach(async () => { await env.teardown(); env = shared; });

  it('reminds before due, escalates at due, and expires after maxPendingDays', async () => {
    const stage = stageOf({ rule: 'all', dueHours: 48, remindBeforeHours: 8, onDue: { action: 'escalate', escalateTo: { users: [], roles: ['cfo'] } } });
    await withFlow({ stages: [stage], maxPendingDays: 5 }, async (h, log) => {
      await h.executeUpdate(signUpdate, sign('f1'));
      await env.sleep('39 hours'); // the reminder is due at 48 - 8 = 40 h
      expect(log.notified.map((n) => n.kind)).toEqual(['request']);
      await env.sleep('2 hours'); // 41 h
      expect(log.notified.at(-1)).toEqual({ kind: 'reminder', stage: 0, userIds: ['f2', 'f3'] });
      await env.sleep('8 hours'); // 49 h: past due
      expect(log.notified.at(-1)).toEqual({ kind: 'escalation', stage: 0, userIds: ['c1'] });
      const escalated = await h.query('state') as FlowState;
      expect(escalated.stages[0].approvers).toContain('c1');
      expect(escalated.stages[0].escalated).toBe(true);
      const end = await h.result(); // nobody signs: 5 days pass in an instant
      expect(end.status).toBe('expired');
      // Its open stage is not left "active" in the answer or the read model.
      expect(end.stages[0].status).toBe('expired');
      expect(log.persisted.at(-1)).toMatchObject({ status: 'expired', stages: [{ status: 'expired' }] });
      expect(log.finished).toEqual(['expired']);
    });
  });

  it('rejects at due when the stage says so', async () => {
    await withFlow({ stages: [stageOf({ dueHours: 24, onDue: { action: 'reject' } })] }, async (h, log) => {
      await h.query('state'); // the first workflow task has run: its timer exists before time is skipped
      const end = await h.result();
      expect(end.status).toBe('rejected');
      expect(end.outcome?.reason).toContain('not decided in time');
      expect(end.stages[0].status).toBe('rejected');
      expect(log.persisted.at(-1)).toMatchObject({ status: 'rejected', stages: [{ status: 'rejected' }] });
    });
  });
});

describe('continue-as-new', () => {
  // A dev server of its own that suggests continue-as-new past 5 events: a flow's every round past its first is over budget.
  let server: RunningTemporal;
  let small: TestWorkflowEnvironment;
  beforeAll(async () => {
    server = await startTemporalDevServer({ port: await freePort(), dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 5 } });
    small = await TestWorkflowEnvironment.createFromExistingServer({ address: server.address });
  });
  afterAll(async () => {
    await small?.teardown();
    await server?.stop();
  });

  it('a sign accepted while the last write is in flight is written and answered before the flow continues as new', async () => {
    const fakes = fakeActivities();
    const persist = fakes.activities.persistFlow;
    let hold: Promise<void> | undefined;
    let writing!: () => void;
    const held = new Promise<void>((resolve) => { writing = resolve; });
    fakes.activities.persistFlow = async (i) => {
      if (hold) {
        writing();
        await hold;
      }
      return persist(i);
    };
    const users = ['u1', 'u2', 'u3', 'u4'];
    await withFlow({ stages: [stageOf({ rule: 'all', approvers: { users, roles: [] } })] }, async (h, log) => {
      expect((await h.executeUpdate(signUpdate, sign('u1'))).status).toBe('pending');
      let release!: () => void;
      hold = new Promise<void>((resolve) => { release = resolve; });
      const first = h.executeUpdate(signUpdate, sign('u2'));
      await held; // u2's write is in flight
      // u3 lands meanwhile (once the held write's workflow task heartbeats); the flow is over its history budget.
      const second = await h.startUpdate(signUpdate, { ...sign('u3'), waitForStage: WorkflowUpdateStage.ACCEPTED });
      release();
      hold = undefined;
      const answers = await Promise.race([
        Promise.all([first, second.result()]),
        new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), 20_000)),
      ]);
      expect(answers).not.toBe('no answer');
      const [, afterU3] = answers as FlowState[];
      expect(afterU3.stages[0].signatures.map((x) => x.userId)).toEqual(['u1', 'u2', 'u3']);
      expect(log.persisted.at(-1)?.stages[0].signatures.map((x) => x.userId)).toEqual(['u1', 'u2', 'u3']);
      // The flow went on in a new run, and the last signature there approves it.
      expect((await h.executeUpdate(signUpdate, sign('u4'))).status).toBe('approved');
      expect((await h.result()).status).toBe('approved');
      expect((await h.describe()).runId).not.toBe(h.firstExecutionRunId);
      expect(log.finished).toEqual(['approved']);
    }, undefined, {}, { on: small, fakes });
  });
});

describe('cancelled from Temporal itself', () => {
  it('a flow cancelled from the UI or CLI ends cancelled in Postgres too, its object follows, and the run ends cancelled', async () => {
    await withFlow({ stages: [stageOf({ rule: 'all' })] }, async (h, log) => {
      expect((await h.executeUpdate(signUpdate, sign('f1'))).status).toBe('pending');
      await h.cancel();
      const err = await h.result().then(() => null, (e: unknown) => e);
      expect((err as Error & { cause?: Error }).cause?.name).toBe('CancelledFailure');
      expect(log.persisted.at(-1)).toMatchObject({ status: 'cancelled', outcome: { reason: 'cancelled in Temporal' }, stages: [{ status: 'cancelled' }] });
      expect(log.finished).toEqual(['cancelled']);
    }, undefined, { patches: APPROVAL_PATCHES });
  });
});
