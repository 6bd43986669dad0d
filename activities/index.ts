// Every domain's activities, built from their dependencies (db models are initialised by the caller).
import { Config } from '../config';
import { BlobStore, DiskBlobStore } from '../lib/blob-store';
import { Logger } from '../lib/logger';
import { createEmailSender, EmailSender } from '../lib/notify/email';
import { createApprovalActivities } from './approvals';
import { createAuditActivities } from './audit';
import { createJobActivities } from './jobs';
import { createReminderActivities } from './reminders';

export interface ActivityDeps {
  blobs: BlobStore;
  email: EmailSender;
  linkSecret: string;
  publicUrl: string;
  exportPageSize?: number;
  exportPagePauseMs?: number;
  /** Per-attempt timeout of webhook deliveries. */
  webhookTimeoutMs?: number;
  /** Whether webhooks and http jobs may call private, loopback and link-local addresses. */
  allowPrivateNetworks: boolean;
  idempotencyTtlHours?: number;
}

export function createActivities(deps: ActivityDeps) {
  return { ...createAuditActivities(deps), ...createApprovalActivities(deps), ...createReminderActivities(deps), ...createJobActivities(deps) };
}

/** The production wiring of the dependencies, from config. */
export function activityDepsFromConfig(config: Config, logger: Logger): ActivityDeps {
  return {
    blobs: new DiskBlobStore(config.fileStoreDir),
    email: createEmailSender({ smtpUrl: config.mail.smtpUrl, from: config.mail.from, logger }),
    linkSecret: config.linkSecret, publicUrl: config.publicUrl,
    exportPageSize: config.auditExport.pageSize, exportPagePauseMs: config.auditExport.pagePauseMs,
    webhookTimeoutMs: config.webhookTimeoutMs, idempotencyTtlHours: config.idempotencyTtlHours,
    allowPrivateNetworks: config.outboundAllowPrivateNetworks,
  };
}

export type Activities = ReturnType<typeof createActivities>;
