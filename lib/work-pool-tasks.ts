// The tasks Docket's work pool (lib/work-pool.ts) runs on its threads: work whose cost the caller's input
// sets. Each is the function the rest of Docket calls in-thread; a thrown error travels back by class name.
import { checkTemplate, renderTemplate } from './documents/templates';
import { firstTrigger, previewTriggers } from './reminder-preview';

export const tasks = { renderTemplate, checkTemplate, previewTriggers, firstTrigger };
export type Tasks = typeof tasks;

/** An error as it crosses the thread boundary: its class name, message and own fields. */
export interface ThrownError { name: string; message: string; fields: Record<string, unknown> }
export type TaskResult = { ok: true; value: unknown } | { ok: false; error: ThrownError };

export default async function runTask({ name, args }: { name: keyof Tasks; args: unknown[] }): Promise<TaskResult> {
  try {
    return { ok: true, value: await (tasks[name] as (...a: unknown[]) => unknown)(...args) };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return { ok: false, error: { name: e.constructor.name, message: e.message, fields: { ...e } } };
  }
}
