// What activities are built from: the worker's connections and settings (activities/index.ts wires them from config).
import type { BlobStore } from '../lib/blob-store';
import type { EmailSender } from '../lib/notify/email';
import type { PdfRenderer } from '../lib/pdf-renderer';

export interface ActivityDeps {
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
