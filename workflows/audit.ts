// Audit export: counts, then writes matching events to a CSV chunk by chunk on the batch kit (resuming
// from the cursor, continuing as new past the history budget), stores it and marks the export ready.
import { ContinueAsNew, continueAsNew, patched, proxyActivities } from '@temporalio/workflow';
import type { AuditActivities } from '../activities/audit';
import type { AuditExportInput, AuditExportResult, ExportCursor } from './audit.api';
import { runBatch } from './batch';
import { endCancelled, failureMessage } from './failures';
import { setWorkflowStatus } from './status';
import { OUTAGE_RETRY } from './retry';

// No attempt limits: an outage is retried until it is over; the activities give up on other errors
// themselves (activities/index.ts).
const short = proxyActivities<AuditActivities>({
  startToCloseTimeout: '1 minute',
  retry: OUTAGE_RETRY,
});

// A chunk pages for about 10 s and heartbeats its cursor; a retry (e.g. after a worker crash) resumes
// from the last heartbeat instead of starting over.
const writer = proxyActivities<AuditActivities>({
  startToCloseTimeout: '10 minutes',
  // A dead worker is noticed after this long, and another resumes the export from its cursor.
  heartbeatTimeout: '10 seconds',
  retry: OUTAGE_RETRY,
});

// Exports started before it wrote everything in one activity (writeAuditExport, 2 hours) and replay so.
const legacyWriter = proxyActivities<AuditActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '10 seconds',
  retry: OUTAGE_RETRY,
});
const BATCH_KIT_PATCH = 'audit-export-batch-kit';

export async function auditExportWorkflow(input: AuditExportInput): Promise<AuditExportResult> {
  const { batch, ...base } = input;
  setWorkflowStatus('running');
  if (!batch) await short.markAuditExportRunning(base);
  try {
    let written: { fileId: string; rows: number };
    if (patched(BATCH_KIT_PATCH)) {
      const { cursor } = await runBatch<ExportCursor, Awaited<ReturnType<AuditActivities['writeAuditExportChunk']>>>({
        resume: batch,
        chunk: (at) => writer.writeAuditExportChunk({ ...base, cursor: at }),
        continueAsNew: (resume) => continueAsNew<typeof auditExportWorkflow>({ ...base, batch: resume }),
      });
      written = await short.finishAuditExport({ ...base, cursor: cursor! });
    } else {
      written = await legacyWriter.writeAuditExport(base);
      await short.completeAuditExport({ ...base, ...written });
    }
    setWorkflowStatus('ready');
    return { status: 'ready', ...written };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    await endCancelled(err, (error) => short.failAuditExport({ ...base, error }));
    const message = failureMessage(err);
    await short.failAuditExport({ ...base, error: message });
    setWorkflowStatus('failed');
    return { status: 'failed', rows: 0, error: message };
  }
}
