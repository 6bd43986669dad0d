// Docket's work pool: the domains' input-priced work (domains/work-pool-tasks.ts) on lib/work-pool's threads,
// one pool per process, with the domains' errors handed back as their own classes.
import fs from 'node:fs';
import path from 'node:path';
import { RecurrenceError } from '../lib/recurrence';
import { WorkPool, WorkPoolOptions } from '../lib/work-pool';
import { TemplateRenderError, TemplateSyntaxError } from './documents/templates';
import type { Tasks } from './work-pool-tasks';

const ERRORS = { RecurrenceError, TemplateRenderError, TemplateSyntaxError };

/** The tasks compiled (dist/) or, from source, through tsx (work-pool-tasks.cjs). */
function tasksFile(): string {
  const compiled = path.join(__dirname, 'work-pool-tasks.js');
  return fs.existsSync(compiled) ? compiled : path.join(__dirname, 'work-pool-tasks.cjs');
}

export function createWorkPool(opts: Omit<WorkPoolOptions, 'filename' | 'errors'> = {}): WorkPool<Tasks> {
  return new WorkPool<Tasks>({ ...opts, filename: tasksFile(), errors: ERRORS });
}

let shared: WorkPool<Tasks> | undefined;

/** The process's pool (made on first use). */
export function workPool(opts?: Omit<WorkPoolOptions, 'filename' | 'errors'>): WorkPool<Tasks> {
  shared ??= createWorkPool(opts);
  return shared;
}

export async function closeWorkPool(): Promise<void> {
  const pool = shared;
  shared = undefined;
  await pool?.close();
}
