// Temporal plumbing: one client factory, and starting a workflow under its business id.
import { Client, WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Workflow } from '@temporalio/common';
import type { WorkflowStartOptions } from '@temporalio/client';
import { BusinessRef, businessWorkflowId, ENTITY_ID, ENTITY_TYPE, OBJECT_ID, STATUS, TENANT_ID } from '../workflows/search-attributes';

export interface TemporalDeps {
  client: Client;
  connection: NativeConnection;
}

/**
 * The API's client runs on the SDK's native (Rust) connection, as the workers do, rather than the pure-JS
 * gRPC one: HTTP/2 and its socket writes then happen off the Node thread that serves requests, which cut
 * the API's CPU per workflow start (bench/README.md, suite foundation).
 */
export async function connectTemporal(address: string, namespace: string): Promise<TemporalDeps> {
  const connection = await NativeConnection.connect({ address });
  return { connection, client: new Client({ connection, namespace }) };
}

/** A row's workflow could not be started (Temporal unreachable or refusing); the row was taken back. */
export class WorkflowStartError extends Error {
  constructor(readonly cause: unknown) {
    super(`the workflow could not be started: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'WorkflowStartError';
  }
}

/**
 * Runs `start` (the start of the workflow that owns a row just written); if it fails, `undo` takes the
 * row back (deletes it or marks it failed) before WorkflowStartError is thrown, so no row is left
 * waiting for a workflow that does not exist. The API answers WorkflowStartError with 503.
 */
export async function startOrUndo(start: () => Promise<unknown>, undo: () => Promise<unknown>): Promise<void> {
  try {
    await start();
  } catch (err) {
    await undo();
    throw new WorkflowStartError(err);
  }
}

export interface StartBusinessWorkflow<W extends Workflow> extends BusinessRef {
  /** The workflow function's name (pass its type as W for checked args). */
  workflowType: string;
  taskQueue: string;
  args: Parameters<W>;
  initialStatus: string;
}

/**
 * Starts (or finds) the workflow whose id is `<domain>:<tenantId>:<entityId>`. A second start of the
 * same id returns the running workflow instead of a duplicate (USE_EXISTING), and the search
 * attributes make it findable in the Temporal UI by tenant, type, object and status.
 */
export async function startBusinessWorkflow<W extends Workflow>(client: Client, opts: StartBusinessWorkflow<W>): Promise<WorkflowHandle<W>> {
  const workflowId = businessWorkflowId(opts);
  try {
    return await startWorkflow<W>(client, workflowId, opts);
  } catch (err) {
    // A failed call does not prove the server did nothing: the start may have been applied and only its
    // reply lost (deadline, dropped connection). Then the workflow exists, and the caller must keep its
    // row rather than undo it (startOrUndo). Every business id is the row's own, so "it exists" means
    // "this start took effect". If the server cannot even be asked, the original error stands.
    const handle = client.workflow.getHandle<W>(workflowId);
    if (await handle.describe().then(() => true, () => false)) return handle;
    throw err;
  }
}

function startWorkflow<W extends Workflow>(client: Client, workflowId: string, opts: StartBusinessWorkflow<W>): Promise<WorkflowHandle<W>> {
  return client.workflow.start<W>(opts.workflowType, {
    taskQueue: opts.taskQueue,
    workflowId,
    args: opts.args,
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [
      { key: TENANT_ID, value: opts.tenantId },
      { key: ENTITY_TYPE, value: opts.entityType },
      { key: ENTITY_ID, value: opts.entityId },
      { key: STATUS, value: opts.initialStatus },
      ...(opts.objectId === undefined ? [] : [{ key: OBJECT_ID, value: opts.objectId }]),
    ],
  } as unknown as WorkflowStartOptions<W>);
}
