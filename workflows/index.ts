// The workflow bundle entry: every workflow type the workers run.
export { auditExportWorkflow } from './audit';
