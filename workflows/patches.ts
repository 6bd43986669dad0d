// Patches a workflow's input says its starting code already had. patched() records, in the history of every new
// workflow that meets a patch, a marker and an upsert of the TemporalChangeVersion search attribute (a visibility
// write) — paid on the server for each workflow and again on every replay — although a workflow started by code
// that has the patch can never need the old path. So the API names the patches its code has in the input it
// starts a workflow with, and the workflow takes their new paths without patched(). Histories whose input has no
// list (older workflows) call patched() as they ran; a patch added later is in no earlier list, so workflows
// started before it call patched() for it as usual.
import { patched } from '@temporalio/workflow';

/** The Status search attribute is upserted only when it changes (workflows/status.ts). */
export const STATUS_UPSERT_PATCH = 'status-upsert-only-on-change';

/**
 * A run cancelled from Temporal itself (the UI, the CLI) writes its work's end (workflows/failures.ts endCancelled);
 * runs cancelled before that existed left their row as it was, and replay so.
 */
export const CANCELLED_WRITE_PATCH = 'cancelled-write';

/**
 * An import or a campaign cancelled from Temporal itself ends its run cancelled, as the UI or CLI asked; before, it
 * recorded the cancel and then completed (the UI showed it Completed), and runs from then replay so.
 */
export const CANCELLED_RUN_PATCH = 'cancelled-run-ends-cancelled';

/** Whether this workflow takes the patch's new path: its input names it (`known`), or patched() says so. */
export function hasPatch(known: readonly string[] | undefined, id: string): boolean {
  return known?.includes(id) === true || patched(id);
}
