// The revert workflow on Temporal's time-skipping server with fake activities (the real retry rules): its outcome is
// the activity's, and an activity that gives up — its attempts spent on an error that is not an outage — is written as
// the revert's failure instead of leaving the import's revert `running` for ever.
import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { ACTIVITY_ATTEMPTS, withActivityRetries } from '../../activities';
import type { ImportActivities } from '../../activities/imports';
import { importRevertWorkflow } from '../../workflows/imports';
import type { ImportRevertInput, ImportRevertOutcome } from '../../workflows/imports.api';
import { STATUS } from '../../workflows/search-attributes';
import { timeSkippingEnv } from '../helpers/time-skipping';

jest.setTimeout(60_000);
let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
});
afterAll(() => env?.teardown());

async function revert(revertImport: () => Promise<ImportRevertOutcome>) {
  const log = { attempts: 0, failures: [] as unknown[] };
  const activities = {
    async revertImport() { log.attempts++; return revertImport(); },
    async recordRevertFailure(i: { error: { code: string; message: string } }) { log.failures.push(i.error); return { error: { status: 500, ...i.error } }; },
  } as unknown as ImportActivities;
  const taskQueue = `wf-revert-${randomUUID()}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: process.env.DOCKET_TEST_BUNDLE! }, activities: withActivityRetries(activities) });
  const input: ImportRevertInput = { tenantId: randomUUID(), importId: randomUUID(), by: { actor: { type: 'user', id: 'u' }, requestId: null }, caller: { fromRoles: ['*'], scopes: null } };
  return worker.runUntil(async () => {
    const h = await env.client.workflow.start(importRevertWorkflow, { taskQueue, workflowId: `import-reverts:${input.tenantId}:${input.importId}`, args: [input] });
    const outcome = await h.result();
    return { outcome, log, status: (await h.describe()).typedSearchAttributes.get(STATUS) };
  });
}

it('returns the revert\'s counts, or its refusal, as the activity answers them', async () => {
  expect(await revert(async () => ({ deleted: 3, restored: 1 }))).toMatchObject({ outcome: { deleted: 3, restored: 1 }, log: { attempts: 1, failures: [] }, status: 'reverted' });
  const refused = { error: { status: 409, code: 'IMPORT_CHANGED_SINCE', message: '1 of the rows this import wrote have changed since; nothing was reverted' } };
  expect(await revert(async () => refused)).toMatchObject({ outcome: refused, log: { attempts: 1, failures: [] }, status: 'refused' });
});

it('writes a revert whose activity gave up as failed, once, after the activity\'s attempts', async () => {
  const r = await revert(async () => { throw new Error('a bug, not an outage'); });
  expect(r.log.attempts).toBe(ACTIVITY_ATTEMPTS.revertImport);
  expect(r.log.failures).toEqual([{ code: 'IMPORT_REVERT_FAILED', message: expect.stringContaining('a bug, not an outage') }]);
  expect(r.outcome).toMatchObject({ error: { status: 500, code: 'IMPORT_REVERT_FAILED' } });
  expect(r.status).toBe('refused');
});
