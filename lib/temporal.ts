// Temporal plumbing: one client factory (answering quickly when the server is down), and starting a
// workflow under its business id.
import net from 'node:net';
import { Client, WorkflowHandle, WorkflowNotFoundError } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Workflow } from '@temporalio/common';
import type { WorkflowStartOptions } from '@temporalio/client';
import type { Transaction } from 'sequelize';
import { WorkflowStartIntent } from '../db/models/system';
import type { RowOf } from './audit';
import { BusinessRef, businessWorkflowId, ENTITY_ID, ENTITY_TYPE, OBJECT_ID, STATUS, TENANT_ID } from '../workflows/search-attributes';
import { TemporalUnavailableError } from './dependency-errors';

export interface TemporalDeps {
  client: Client;
  connection: NativeConnection;
}

/**
 * The API's client runs on the SDK's native (Rust) connection, as the workers do, rather than the pure-JS
 * gRPC one: HTTP/2 and its socket writes then happen off the Node thread that serves requests, which cut
 * the API's CPU per workflow start (bench/README.md, suite foundation).
 */
export async function connectTemporal(address: string, namespace: string, guard: TemporalGuardOptions = {}): Promise<TemporalDeps> {
  const connection = guardConnection(await NativeConnection.connect({ address }), address, guard);
  return { connection, client: new Client({ connection, namespace }) };
}

export interface TemporalGuardOptions {
  /** A call not answered after this long makes the guard check the server is there (default 1 s). */
  slowMs?: number;
  /** Connect timeout of that check (default 1 s). */
  probeMs?: number;
}

/** Does anything accept a TCP connection at `address` within `ms`? */
function reachable(address: string, ms: number): Promise<boolean> {
  const { hostname, port } = new URL(`tcp://${address}`);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(ms, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * The connection with every WorkflowService call guarded, so that the API answers within ~2 s when Temporal
 * is down. The native client retries an unreachable server for about 10 s and ignores deadlines and abort
 * signals (SDK 1.24, NativeConnection.sendRequest), so a call that has not answered within `slowMs` makes the
 * guard try a TCP connection to the server: if none is accepted, the call fails at once with
 * TemporalUnavailableError, and calls in the next second fail without being sent. A slow call to a server
 * that is there (a long poll, an update waiting for its workflow) is waited for as before. If a call the
 * guard gave up on succeeds after all (the server came back within the native retries), what the API took
 * back is undone in Temporal too: a workflow it started is terminated, a schedule it created deleted.
 */
function guardConnection(connection: NativeConnection, address: string, opts: TemporalGuardOptions): NativeConnection {
  const slowMs = opts.slowMs ?? 1_000;
  const probeMs = opts.probeMs ?? 1_000;
  let downUntil = 0;
  const service = connection.workflowService;
  const down = (pending?: Promise<unknown>) => new TemporalUnavailableError(`Temporal at ${address} is unreachable`, pending);

  function compensate(method: string, req: Record<string, unknown>, res: Record<string, unknown>): void {
    const reason = 'the API gave up waiting for Temporal and took the request back';
    if (method === 'startWorkflowExecution' && res.started && res.runId) {
      void service.terminateWorkflowExecution({ namespace: req.namespace as string, workflowExecution: { workflowId: req.workflowId as string, runId: res.runId as string }, reason }).catch(() => undefined);
    }
    if (method === 'createSchedule') void service.deleteSchedule({ namespace: req.namespace as string, scheduleId: req.scheduleId as string }).catch(() => undefined);
  }

  async function guarded(method: string, req: Record<string, unknown>, call: () => Promise<unknown>): Promise<unknown> {
    if (Date.now() < downUntil) throw down();
    const pending = call();
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<'slow'>((resolve) => { timer = setTimeout(() => resolve('slow'), slowMs); });
    try {
      if (await Promise.race([pending.then(() => 'done' as const, () => 'done' as const), slow]) === 'done') return await pending;
    } finally {
      clearTimeout(timer);
    }
    if (await reachable(address, probeMs)) return pending;
    downUntil = Date.now() + 1_000;
    pending.then((res) => compensate(method, req, res as Record<string, unknown>), () => undefined);
    throw down(pending);
  }

  const workflowService = new Proxy(service, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string' || ['constructor', 'rpcCall', 'end', 'emit', 'on', 'off', 'once'].includes(prop)) return value;
      return (req: Record<string, unknown>) => guarded(prop, req, () => value.call(target, req));
    },
  });
  // Everything else (withDeadline, callContextStorage, close …) is the native connection's own.
  return Object.create(connection, { workflowService: { value: workflowService } }) as NativeConnection;
}

/** A row's workflow could not be started (Temporal unreachable or refusing); the row was taken back. */
export class WorkflowStartError extends Error {
  constructor(readonly cause: unknown) {
    super(`the workflow could not be started: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'WorkflowStartError';
  }
}

/**
 * Test-only fault injection (honoured only under NODE_ENV=test, read once at boot): the process SIGKILLs
 * itself right after a row is committed and before its workflow is started, so a test can show that the
 * start reconciler finds the row. Never set it anywhere else.
 */
const CRASH_BEFORE_WORKFLOW_START = process.env.NODE_ENV === 'test' && process.env.DOCKET_TEST_CRASH_BEFORE_WORKFLOW_START === 'true';

/** Where a command's row and its Temporal side part (see CRASH_BEFORE_WORKFLOW_START): a no-op outside that test. */
export function crashPointForTests(): void {
  if (CRASH_BEFORE_WORKFLOW_START) process.kill(process.pid, 'SIGKILL');
}

/**
 * Runs `start` (the start of the workflow that owns a row just written); if it fails, `undo` takes the
 * row back (deletes it or marks it failed) before WorkflowStartError is thrown, so no row is left
 * waiting for a workflow that does not exist. The API answers WorkflowStartError with 503. If the
 * process dies before this (between the commit and the start), the row's start intent is left, and the
 * start reconciler starts the workflow (activities/system.ts).
 */
export async function startOrUndo(start: () => Promise<unknown>, undo: () => Promise<unknown>): Promise<void> {
  crashPointForTests();
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
 * The start intent of a workflow (its row in the outbox `workflow_start_intents`), to be written in the
 * same statement (createWithAudit's `also`) or transaction as the row the workflow owns: if the process
 * dies before the start, the intent is still there for the start reconciler.
 */
export function startIntent<W extends Workflow>(opts: StartBusinessWorkflow<W>): RowOf {
  return {
    model: WorkflowStartIntent as unknown as RowOf['model'],
    values: { workflowId: businessWorkflowId(opts), tenantId: opts.tenantId, workflowType: opts.workflowType, request: opts },
  };
}

/**
 * Writes the start intent inside the transaction that writes the workflow's row. A row whose workflow id has runs (a
 * campaign's retry, an import's revert asked again) may find the last run's intent not yet removed: this one replaces it.
 */
export async function recordStartIntent<W extends Workflow>(opts: StartBusinessWorkflow<W>, transaction: Transaction): Promise<void> {
  const { values } = startIntent(opts);
  await WorkflowStartIntent.destroy({ where: { workflowId: values.workflowId as string }, transaction });
  await WorkflowStartIntent.create(values as never, { transaction });
}

/**
 * Starts (or finds) the workflow whose id is `<domain>:<tenantId>:<entityId>`. A second start of the
 * same id returns the running workflow instead of a duplicate (USE_EXISTING), and the search
 * attributes make it findable in the Temporal UI by tenant, type, object and status. Once it exists,
 * its start intent (if any) is removed, with the others of the moment (startIntentDone).
 */
export async function startBusinessWorkflow<W extends Workflow>(client: Client, opts: StartBusinessWorkflow<W>): Promise<WorkflowHandle<W>> {
  const workflowId = businessWorkflowId(opts);
  let handle: WorkflowHandle<W>;
  const asked = Date.now();
  try {
    handle = await startWorkflow<W>(client, workflowId, opts);
  } catch (err) {
    // A failed call does not prove the server did nothing: the start may have been applied and only its
    // reply lost (deadline, dropped connection). Then the workflow exists, and the caller must keep its
    // row rather than undo it (startOrUndo). Every business id is the row's own, so "it exists" means
    // "this start took effect" — unless the row owns successive runs of the id (a campaign's retries, an
    // import's reverts): a closed run from before this call is an earlier one's, not this start's.
    handle = client.workflow.getHandle<W>(workflowId);
    const took = await handle.describe().then((d) => d.status.name === 'RUNNING' || d.startTime.getTime() >= asked - 1_000, () => false);
    if (!took) throw err;
  }
  startIntentDone(workflowId, opts);
  return handle;
}

/** Longest an intent whose workflow exists waits for its removal, and most removed by one statement. */
const INTENT_SWEEP_MS = 100;
const INTENT_SWEEP_MAX = 500;
/** Workflow id → the start request its intent holds (a campaign's runs share an id: only this run's is removed). */
const intentsDone = new Map<string, unknown>();
let sweepTimer: NodeJS.Timeout | undefined;
let sweeping: Promise<void> | null = null;

/**
 * Start intents whose workflows exist are removed together, one DELETE for the starts that took effect within
 * INTENT_SWEEP_MS, instead of a round trip per start: a per-start DELETE was about a third of the API's own CPU
 * per workflow start (bench/README.md, suite foundation). One sweep runs at a time (with Postgres away, sweeps
 * must not queue up behind each other). An intent not removed (the process died first, the database was away)
 * is the reconciler's: after its grace period it finds the workflow and drops the intent.
 */
function startIntentDone(workflowId: string, request: unknown): void {
  intentsDone.set(workflowId, request);
  scheduleSweep();
}

function scheduleSweep(): void {
  if (sweeping || sweepTimer || !intentsDone.size) return;
  if (intentsDone.size >= INTENT_SWEEP_MAX) { void sweep(); return; }
  sweepTimer = setTimeout(() => { void sweep(); }, INTENT_SWEEP_MS);
  sweepTimer.unref();
}

function sweep(): Promise<void> {
  clearTimeout(sweepTimer);
  sweepTimer = undefined;
  if (sweeping || !intentsDone.size) return sweeping ?? Promise.resolve();
  const done = [...intentsDone].slice(0, INTENT_SWEEP_MAX);
  for (const [workflowId] of done) intentsDone.delete(workflowId);
  sweeping = WorkflowStartIntent.sequelize!.query(`DELETE FROM workflow_start_intents i USING jsonb_to_recordset($1::jsonb) AS d(id text, request jsonb)
      WHERE i.workflow_id = d.id AND i.request = d.request`, { bind: [JSON.stringify(done.map(([id, request]) => ({ id, request })))] })
    .then(() => undefined, () => undefined)
    .finally(() => { sweeping = null; scheduleSweep(); });
  return sweeping;
}

/** Whether a workflow id has a run open, only closed ones, or none at all (never started, or its history expired). */
export async function workflowRunState(client: Client, workflowId: string): Promise<'running' | 'closed' | 'none'> {
  return client.workflow.getHandle(workflowId).describe().then(
    (d) => (d.status.name === 'RUNNING' ? 'running' : 'closed'),
    (err: unknown) => { if (err instanceof WorkflowNotFoundError) return 'none'; throw err; },
  );
}

/** Removes the intents of the workflows started so far now (on shutdown; the reconciler between its pages). */
export async function flushStartIntents(): Promise<void> {
  while (sweeping || intentsDone.size) await (sweeping ?? sweep());
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
