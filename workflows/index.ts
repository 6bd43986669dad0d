// The workflow bundle entry: every workflow type the workers run.
export { auditExportWorkflow } from './audit';
export { subscriberExportWorkflow } from './audience';
export { approvalFlowWorkflow } from './approvals';
export { documentBatchWorkflow, documentPreviewWorkflow, documentWorkflow } from './documents';
export { reminderWorkflow } from './reminders';
export { jobRunWorkflow } from './jobs';
export { reconcileStartsWorkflow } from './system';
export { importRevertWorkflow, importWorkflow } from './imports';
export { campaignTestWorkflow, campaignWorkflow } from './campaigns';
export { webhookDeliveryWorkflow, webhookEndpointWorkflow, webhookRelayWorkflow } from './webhooks';
