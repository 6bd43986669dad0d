// Approvals: versioned templates, flows on durable workflows, emails with one-click links (their own queue).
import { createApprovalActivities } from '../../activities/approvals';
import { approvalRoutes } from '../../api/routes/approvals';
import { initApprovalModels } from '../../db/models/approvals';
import { APPROVAL_NOTIFY_TASK_QUEUE, APPROVALS_TASK_QUEUE } from '../../workflows/approvals.api';
import { defineDomain } from '../module';

export const approvals = defineDomain({
  name: 'approvals',
  models: initApprovalModels,
  queues: { approvals: APPROVALS_TASK_QUEUE, 'approval-notifications': APPROVAL_NOTIFY_TASK_QUEUE },
  activities: createApprovalActivities,
  attempts: { resolveApprovers: 20, persistFlow: 20, notifyApprovers: 20, notifyRequestWatchers: 20, flowFinished: 20 },
  // Written with version -1; the workflow's first write raises it.
  startIntents: { approvalFlowWorkflow: { table: 'approval_flows', entityType: 'approval_flow', waiting: 'state_version = -1' } },
  routes: approvalRoutes,
});
