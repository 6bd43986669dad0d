// The domain registry: each domain declares its models, queues, activities and routes once, and the
// merged registries refuse a name two domains declare.
import type { ActivityDeps } from '../../activities/deps';
import { ACTIVITY_ATTEMPTS, START_INTENTS } from '../../activities';
import { DOMAINS } from '../../domains';
import { mergeDeclared } from '../../domains/module';
import { TASK_QUEUES } from '../../workers/queues';
import * as bundle from '../../workflows';

// Building activities only closes over their dependencies; nothing is called.
const deps = { allowPrivateNetworks: false } as unknown as ActivityDeps;

it('refuses a name that two domains declare, naming both', () => {
  expect(() => mergeDeclared('task queue', [{ domain: 'a', declared: { x: '1' } }, { domain: 'b', declared: { x: '2' } }]))
    .toThrow('task queue "x" is declared by both a and b');
  expect(mergeDeclared('task queue', [{ domain: 'a', declared: { x: '1' } }, { domain: 'b', declared: { y: '2' } }])).toEqual({ x: '1', y: '2' });
});

it('gives every attempt budget a domain declares to one of that domain\'s own activities', () => {
  for (const d of DOMAINS) {
    if (!('attempts' in d)) continue;
    const names = Object.keys('activities' in d ? d.activities(deps) : {});
    expect({ domain: d.name, unknown: Object.keys(d.attempts).filter((a) => !names.includes(a)) }).toEqual({ domain: d.name, unknown: [] });
  }
  expect(ACTIVITY_ATTEMPTS).toMatchObject({ default: 10, renderBatchChunk: 50, notifyApprovers: 20 });
});

it('serves every queue a domain declares, each once', () => {
  const declared = DOMAINS.flatMap((d) => Object.values('queues' in d ? d.queues : {}));
  expect(Object.values(TASK_QUEUES).sort()).toEqual([...new Set(declared)].sort());
  expect(Object.keys(TASK_QUEUES)).toEqual(expect.arrayContaining(['approvals', 'approval-notifications', 'audit', 'documents', 'reminders', 'jobs', 'imports', 'system']));
});

it('lets the start reconciler recover every workflow a domain starts with a start intent, and only workflows the workers run', () => {
  // The commands that write a start intent beside their row (api-crash-start.test.ts kills the API between the two).
  expect(Object.keys(START_INTENTS).sort()).toEqual(['approvalFlowWorkflow', 'auditExportWorkflow', 'campaignWorkflow', 'documentBatchWorkflow', 'documentWorkflow', 'importRevertWorkflow', 'importWorkflow', 'reminderWorkflow', 'subscriberExportWorkflow']);
  expect(Object.keys(START_INTENTS).filter((w) => !Object.hasOwn(bundle, w))).toEqual([]);
  expect(() => mergeDeclared('start intent of workflow', [{ domain: 'a', declared: { w: 1 } }, { domain: 'b', declared: { w: 2 } }])).toThrow('declared by both a and b');
});
