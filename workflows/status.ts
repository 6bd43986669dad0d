// Keeps the Status search attribute current from inside a workflow (deterministic: no I/O).
import { patched, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { STATUS } from './search-attributes';

/**
 * `current`: the workflow's input says it was started by code that already had this check, so it needs no patch
 * marker (a patch costs a marker, a TemporalChangeVersion upsert and a visibility write of its own).
 */
export function setWorkflowStatus(status: string, current = false): void {
  // An unchanged status is not upserted again: each upsert is a command, a history event and a
  // visibility write, and a waiting flow that loops once per sign would pay them on every signature.
  // Histories from before this check upserted every time; patched() keeps them replaying as they ran.
  if (workflowInfo().typedSearchAttributes.get(STATUS) === status && (current || patched('status-upsert-only-on-change'))) return;
  upsertSearchAttributes([{ key: STATUS, value: status }]);
}
