// Work that runs as a workflow answers the same way everywhere (audit exports, documents, batches): 202
// Accepted with the job's status resource in Location, the status read from Postgres while it runs, and its
// file downloadable once it is ready (409 with the job's own code before).
import Koa from 'koa';
import { StoredFile } from '../db/models/files';
import type { BlobStore } from '../lib/blob-store';
import { ApiError } from '../lib/problems';
import { findInTenant } from '../lib/tenancy';
import { respond } from './conventions';
import { sendStoredFile } from './downloads';

/** The job was started: 202, its status at `location` (poll it; a ready job's status has a downloadUrl). */
export function accepted(ctx: Koa.Context, status: unknown, location: string): void {
  respond(ctx, status, { status: 202, location });
}

/** Refuses with `notReady` (a 409 naming the job's state) unless the job is ready. */
export function whenReady(job: { status: string }, notReady: () => ApiError): void {
  if (job.status !== 'ready') throw notReady();
}

/** A ready job's stored file (ETag, 304 on If-None-Match); `notReady` before. */
export async function downloadWhenReady(
  ctx: Koa.Context, blobs: BlobStore, job: { status: string; tenantId: string; fileId: string | null }, notReady: () => ApiError,
): Promise<void> {
  whenReady(job, notReady);
  if (!job.fileId) throw notReady();
  await sendStoredFile(ctx, blobs, await findInTenant(StoredFile, job.tenantId, job.fileId, 'File'));
}
