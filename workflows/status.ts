// Keeps the Status search attribute current from inside a workflow (deterministic: no I/O).
import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { hasPatch, STATUS_UPSERT_PATCH } from './patches';
import { STATUS } from './search-attributes';

/** `known`: the patches the workflow's input says its starting code had (workflows/patches.ts). */
export function setWorkflowStatus(status: string, known?: readonly string[]): void {
  // An unchanged status is not upserted again: each upsert is a command, a history event and a
  // visibility write, and a waiting flow that loops once per sign would pay them on every signature.
  // Histories from before this check upserted every time; patched() keeps them replaying as they ran.
  if (workflowInfo().typedSearchAttributes.get(STATUS) === status && hasPatch(known, STATUS_UPSERT_PATCH)) return;
  upsertSearchAttributes([{ key: STATUS, value: status }]);
}
