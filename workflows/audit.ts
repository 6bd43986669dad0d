// Audit export: counts, then streams matching events to a CSV in the file store, resuming from its cursor.
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { AuditActivities } from '../activities/audit';
import type { AuditExportInput, AuditExportResult } from './audit.api';
import { setWorkflowStatus } from './status';

// No attempt limits: an outage is retried until it is over; the activities give up on other errors
// themselves (activities/index.ts).
const short = proxyActivities<AuditActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

// The writer pages through events and heartbeats its cursor; a retry (e.g. after a worker crash)
// resumes from the last heartbeat instead of starting over.
const writer = proxyActivities<AuditActivities>({
  startToCloseTimeout: '2 hours',
  // A dead worker is noticed after this long, and another resumes the export from its cursor.
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

export async function auditExportWorkflow(input: AuditExportInput): Promise<AuditExportResult> {
  setWorkflowStatus('running');
  await short.markAuditExportRunning(input);
  try {
    const { fileId, rows } = await writer.writeAuditExport(input);
    await short.completeAuditExport({ ...input, fileId, rows });
    setWorkflowStatus('ready');
    return { status: 'ready', rows, fileId };
  } catch (err) {
    const cause = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : err;
    const message = cause instanceof Error ? cause.message : String(cause);
    await short.failAuditExport({ ...input, error: message });
    setWorkflowStatus('failed');
    return { status: 'failed', rows: 0, error: message };
  }
}
