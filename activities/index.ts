// Every domain's activities, built from their dependencies (db models are initialised by the caller).
import { Config } from '../config';
import { withOutageRetries } from '../lib/activity-retries';
import { BlobStore, DiskBlobStore } from '../lib/blob-store';
import { Logger } from '../lib/logger';
import { createEmailSender, EmailSender } from '../lib/notify/email';
import { createApprovalActivities } from './approvals';
import { createAuditActivities } from './audit';
import { createDocumentActivities } from './documents';
import { PdfRenderer } from '../lib/documents/renderer';
import { createImportActivities, ImportActivityDeps } from './imports';
import { createJobActivities } from './jobs';
import { createReminderActivities } from './reminders';

export interface ActivityDeps extends Omit<ImportActivityDeps, 'blobs'> {
  blobs: BlobStore;
  email: EmailSender;
  linkSecret: string;
  /** Opens secrets stored sealed (webhook secrets). */
  secretsKey: Buffer;
  publicUrl: string;
  exportPageSize?: number;
  exportPagePauseMs?: number;
  /** The worker's Chromium page pool (closed by whoever made it, when the worker stops). */
  renderer: PdfRenderer;
  batchConcurrency?: number;
  /** Per-attempt timeout of webhook deliveries. */
  webhookTimeoutMs?: number;
  /** Whether webhooks and http jobs may call private, loopback and link-local addresses. */
  allowPrivateNetworks: boolean;
  idempotencyTtlHours?: number;
}

/**
 * An outage (Postgres or Temporal unreachable) is retried until it is over: the workflows' retry policies
 * have no attempt limit. These are the attempts each activity gets for any other error before it gives up.
 */
export const ACTIVITY_ATTEMPTS = {
  default: 10,
  renderDocument: 5, renderPreview: 5, renderBatchChunk: 50, writeAuditExport: 20, writeAuditExportChunk: 20, finishAuditExport: 20,
  resolveApprovers: 20, persistFlow: 20, notifyApprovers: 20, flowFinished: 20,
  deliverReminder: 8, jobRunStarted: 20, jobRunFinished: 20,
  stageImportChunk: 20, mergeImportChunk: 20, endImport: 20,
  // The schedule's own maximumAttempts (0 = no limit) decides for the job itself.
  runJob: (i: { attempts?: number }) => i.attempts ?? 0,
};

/** Activities — Docket's, or a test's fakes of them — with Docket's retry rules (lib/activity-retries.ts). */
export const withActivityRetries = <T extends Parameters<typeof withOutageRetries>[0]>(activities: T): T => withOutageRetries(activities, ACTIVITY_ATTEMPTS);

export function createActivities(deps: ActivityDeps) {
  return withActivityRetries({
    ...createAuditActivities(deps), ...createApprovalActivities(deps), ...createDocumentActivities(deps),
    ...createReminderActivities(deps), ...createJobActivities(deps), ...createImportActivities(deps),
  });
}

/** The production wiring of the dependencies, from config. */
export function activityDepsFromConfig(config: Config, logger: Logger): ActivityDeps {
  return {
    blobs: new DiskBlobStore(config.fileStoreDir),
    email: createEmailSender({ smtpUrl: config.mail.smtpUrl, from: config.mail.from, logger }),
    linkSecret: config.linkSecret, secretsKey: config.secretsKey, publicUrl: config.publicUrl,
    exportPageSize: config.auditExport.pageSize, exportPagePauseMs: config.auditExport.pagePauseMs,
    renderer: rendererFromConfig(config, logger), batchConcurrency: config.documents.poolSize,
    webhookTimeoutMs: config.webhookTimeoutMs, idempotencyTtlHours: config.idempotencyTtlHours,
    allowPrivateNetworks: config.outboundAllowPrivateNetworks,
    importChunkMs: config.imports.chunkMs, importStageRows: config.imports.stageRows, importMergeRows: config.imports.mergeRows,
    importMergeConcurrency: config.imports.mergeConcurrency, importMaxUncompressedBytes: config.imports.maxUncompressedBytes,
  };
}

export type Activities = ReturnType<typeof createActivities>;

/** The Chromium pool from config; the browser starts on the first render (or renderer.warm()). */
export function rendererFromConfig(config: Config, logger?: Logger): PdfRenderer {
  return new PdfRenderer({
    executablePath: config.documents.chromiumPath, poolSize: config.documents.poolSize, timeoutMs: config.documents.renderTimeoutMs,
    log: (msg, extra) => logger?.warn(extra ?? {}, msg),
  });
}
