// Docket's work pool: the domains' input-priced work (domains/work-pool-tasks.ts) on lib/work-pool's threads,
// one pool per process, with the domains' errors handed back as their own classes.
import fs from 'node:fs';
import path from 'node:path';
import { ApiError } from '../lib/problems';
import { RecurrenceError } from '../lib/recurrence';
import { TaskLimitError, WorkPool, WorkPoolOptions } from '../lib/work-pool';
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

let campaigns: WorkPool<Tasks> | undefined;

/**
 * Campaign sends' own pool (one thread; made on first use). A campaign renders its whole audience here, so a tenant's
 * slow template keeps this thread busy for as long as it sends: on the process's pool, it would hold up every
 * document and notification the worker renders.
 */
export function campaignWorkPool(): WorkPool<Tasks> {
  campaigns ??= createWorkPool({ threads: 1 });
  return campaigns;
}

/** Closes the process's pools. */
export async function closeWorkPool(): Promise<void> {
  const pools = [shared, campaigns];
  shared = undefined;
  campaigns = undefined;
  await Promise.all(pools.map((p) => p?.close()));
}

/** What a template stopped by the pool is told: the same for a preview (422) and a document job (failed). */
export const templateLimitMessage = (err: TaskLimitError) => `The template ${err.message}; make it do less work (smaller loops, less data)`;

/**
 * Template work on the work pool (off the request thread, within TEMPLATE_LIMITS.budgetMs): a syntax error
 * is a 422 naming part, line and column (at `pathOf(part)`), a render error 422 TEMPLATE_RENDER_ERROR, and
 * work stopped for time or memory 422 TEMPLATE_RENDER_LIMIT. Documents and campaigns answer the same.
 */
export async function templateWork<T>(work: () => Promise<T>, pathOf: (part: string) => string = (part) => `/parts/${part}`): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof TemplateSyntaxError) {
      const message = `line ${err.line}, column ${err.column}: ${err.message.split(': ').slice(1).join(': ')}`;
      throw new ApiError(422, 'TEMPLATE_SYNTAX_ERROR', err.message, { errors: [{ path: pathOf(err.part), message, line: err.line, column: err.column }] });
    }
    if (err instanceof TemplateRenderError) throw new ApiError(422, 'TEMPLATE_RENDER_ERROR', err.message);
    if (err instanceof TaskLimitError) throw new ApiError(422, 'TEMPLATE_RENDER_LIMIT', templateLimitMessage(err));
    throw err;
  }
}
