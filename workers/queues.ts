// Task queues by short name, as the domains declare them (domains/index.ts); WORKER_QUEUES picks which
// ones a worker process serves.
import { DOMAINS } from '../domains';
import { mergeDeclared } from '../domains/module';

export const TASK_QUEUES: Readonly<Record<string, string>> = mergeDeclared('task queue', DOMAINS.map((d) => ({ domain: d.name, declared: 'queues' in d ? d.queues : {} })));

export function selectQueues(names: string[]): string[] {
  if (names.length === 0) return Object.values(TASK_QUEUES);
  return names.map((n) => {
    const q = Object.hasOwn(TASK_QUEUES, n) ? TASK_QUEUES[n] : undefined;
    if (!q) throw new Error(`WORKER_QUEUES: unknown queue "${n}" (known: ${Object.keys(TASK_QUEUES).join(', ')})`);
    return q;
  });
}
