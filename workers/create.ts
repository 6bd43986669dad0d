// Builds one Worker per task queue, sharing one connection, one bundle and one set of activities.
import fs from 'node:fs';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Activities } from '../activities';
import { DEFAULT_BUNDLE_PATH, writeWorkflowBundle } from './bundle';

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  queues: string[];
  activities: Activities;
  bundlePath?: string;
  /** Sticky cache size per queue's worker; unset or 0 keeps the SDK's default (sized from the heap limit). */
  maxCachedWorkflows?: number;
}

export async function createWorkers(opts: WorkerOptions): Promise<Worker[]> {
  let bundlePath = opts.bundlePath ?? DEFAULT_BUNDLE_PATH;
  // Development convenience: build the bundle on first start; production images ship it prebuilt.
  if (!fs.existsSync(bundlePath)) bundlePath = await writeWorkflowBundle(bundlePath);
  return Promise.all(opts.queues.map((taskQueue) => Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue,
    workflowBundle: { codePath: bundlePath },
    activities: opts.activities,
    // A cached workflow costs worker memory but saves a history replay on its next task; with thousands of
    // flows waiting on timers, bounding the cache bounds the worker's RSS (evicted ones replay when they wake).
    ...(opts.maxCachedWorkflows ? { maxCachedWorkflows: opts.maxCachedWorkflows } : {}),
  })));
}

/** Runs all workers until shutdown() is called on them (SIGINT/SIGTERM are handled by the SDK). */
export async function runWorkers(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.run()));
}
