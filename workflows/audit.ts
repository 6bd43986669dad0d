// Audit export: counts, then writes matching events to a CSV chunk by chunk on the batch kit (resuming
// from the cursor, continuing as new past the history budget), stores it and marks the export ready.
import { ContinueAsNew, continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { AuditActivities } from '../activities/audit';
import { AUDIT_EXPORT_BATCH_KIT_PATCH, AUDIT_EXPORT_MARK_RUNNING_PATCH, type AuditExportInput, type AuditExportResult, type ExportCursor } from './audit.api';
import { runBatch } from './batch';
import { endCancelled, failureMessage } from './failures';
import { hasPatch } from './patches';
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

// Exports started before the batch kit (AUDIT_EXPORT_BATCH_KIT_PATCH) wrote everything in one activity, and replay so.
const legacyWriter = proxyActivities<AuditActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '10 seconds',
  retry: OUTAGE_RETRY,
});

export async function auditExportWorkflow(input: AuditExportInput): Promise<AuditExportResult> {
  const { batch, ...base } = input;
  const known = base.patches;
  setWorkflowStatus('running', known);
  // A first run marks the export running inside the try (AUDIT_EXPORT_MARK_RUNNING_PATCH), so a cancel or a give-up
  // there ends the export too; exports from before it did so outside, and replay so.
  const markInTry = !batch && hasPatch(known, AUDIT_EXPORT_MARK_RUNNING_PATCH);
  if (!batch && !markInTry) await short.markAuditExportRunning(base);
  try {
    if (markInTry) await short.markAuditExportRunning(base);
    let written: { fileId: string; rows: number };
    if (hasPatch(known, AUDIT_EXPORT_BATCH_KIT_PATCH)) {
      const { cursor } = await runBatch<ExportCursor, Awaited<ReturnType<AuditActivities['writeAuditExportChunk']>>>({
        resume: batch,
        known,
        chunk: (at) => writer.writeAuditExportChunk({ ...base, cursor: at }),
        continueAsNew: (resume) => continueAsNew<typeof auditExportWorkflow>({ ...base, batch: resume }),
      });
      written = await short.finishAuditExport({ ...base, cursor: cursor! });
    } else {
      written = await legacyWriter.writeAuditExport(base);
      await short.completeAuditExport({ ...base, ...written });
    }
    setWorkflowStatus('ready', known);
    return { status: 'ready', ...written };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    await endCancelled(err, (error) => short.failAuditExport({ ...base, error }), { known });
    const message = failureMessage(err);
    await short.failAuditExport({ ...base, error: message });
    setWorkflowStatus('failed', known);
    return { status: 'failed', rows: 0, error: message };
  }
}
