// What activities are built from: the worker's connections and settings (activities/index.ts wires them from config).
import type { BlobStore } from '../lib/blob-store';
import type { ImportActivityDeps } from './imports';
import type { EmailSender } from '../lib/notify/email';
import type { StartIntentRow } from '../domains/module';
import type { PdfRenderer } from '../lib/pdf-renderer';
import type { RelaySettings } from '../domains/webhooks/relay';

// The imports' settings are declared once, with their activities (ImportActivityDeps).
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
  /** How each tenant's webhook relay runs (activities that hand deliveries to it wake it). */
  webhookRelay?: RelaySettings;
  /** Per-attempt timeout of webhook deliveries. */
  webhookTimeoutMs?: number;
  /** Webhook endpoints failing every attempt for this long are disabled (default 5 days). */
  webhookAutoDisableAfterMs?: number;
  /** Whether webhooks and http jobs may call private, loopback and link-local addresses. */
  allowPrivateNetworks: boolean;
  idempotencyTtlHours?: number;
  /** Start intents younger than this are left to the API that wrote them (the start reconciler). */
  reconcileStartsGraceMs?: number;
  /** The workflows whose lost starts the reconciler recovers: what the domains declare (createActivities fills it). */
  startIntents?: Readonly<Record<string, StartIntentRow>>;
  /** Campaigns: their own pooled SMTP transport (`email` if absent), recipients per batch, messages in flight, chunk length. */
  bulkEmail?: EmailSender;
  campaignBatchSize?: number;
  campaignConcurrency?: number;
  campaignChunkMs?: number;
  /** Campaigns: lanes a new send is split into (chunks of one send running at once). */
  campaignLanes?: number;
  /** Campaigns: statement_timeout of the audience snapshot's statements (past it the send fails with SNAPSHOT_TIMEOUT). */
  campaignSnapshotTimeoutMs?: number;
  campaignUnsubscribeMailto?: string;
  /** SENDER_DOMAINS: whether a send's From domain is checked again when it starts. */
  senderDomainsMode?: 'verified' | 'any';
}
