// Keeps the Status search attribute current from inside a workflow (deterministic: no I/O).
import { upsertSearchAttributes } from '@temporalio/workflow';
import { STATUS } from './search-attributes';

export function setWorkflowStatus(status: string): void {
  upsertSearchAttributes([{ key: STATUS, value: status }]);
}
