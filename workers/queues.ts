// Task queues by short name; WORKER_QUEUES picks which ones a worker process serves.
import { APPROVAL_NOTIFY_TASK_QUEUE, APPROVALS_TASK_QUEUE } from '../workflows/approvals.api';
import { AUDIT_TASK_QUEUE } from '../workflows/audit.api';
import { DOCUMENTS_TASK_QUEUE } from '../workflows/documents.api';
import { IMPORTS_TASK_QUEUE } from '../workflows/imports.api';
import { JOBS_TASK_QUEUE } from '../workflows/jobs.api';
import { REMINDERS_TASK_QUEUE } from '../workflows/reminders.api';

export const TASK_QUEUES: Record<string, string> = {
  audit: AUDIT_TASK_QUEUE,
  approvals: APPROVALS_TASK_QUEUE,
  'approval-notifications': APPROVAL_NOTIFY_TASK_QUEUE,
  documents: DOCUMENTS_TASK_QUEUE,
  reminders: REMINDERS_TASK_QUEUE,
  jobs: JOBS_TASK_QUEUE,
  imports: IMPORTS_TASK_QUEUE,
};

export function selectQueues(names: string[]): string[] {
  if (names.length === 0) return Object.values(TASK_QUEUES);
  return names.map((n) => {
    const q = TASK_QUEUES[n];
    if (!q) throw new Error(`WORKER_QUEUES: unknown queue "${n}" (known: ${Object.keys(TASK_QUEUES).join(', ')})`);
    return q;
  });
}
