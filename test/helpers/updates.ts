import { WorkflowUpdateFailedError } from '@temporalio/client';

/** The refusal type a workflow's Update validator or handler answered with (undefined when it was accepted). */
export async function refusal(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof WorkflowUpdateFailedError ? (err.cause as { type?: string }).type : String(err);
  }
}
