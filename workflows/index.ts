// The workflow bundle entry: every workflow type the workers run.
export { auditExportWorkflow } from './audit';
export { approvalFlowWorkflow } from './approvals';
export { documentBatchWorkflow, documentPreviewWorkflow, documentWorkflow } from './documents';
