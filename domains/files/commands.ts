// File commands: store an upload, open a file the caller may read, delete a file nothing else uses.
import { Readable } from 'node:stream';
import { StoredFile } from '../../db/models/files';
import { recordAudit } from '../../lib/audit';
import { BlobTooLargeError } from '../../lib/blob-store';
import { ContentTooSmallError, deleteFile, fileDependents, ownerOf, storeStream } from '../../lib/files';
import { ApiError, permissionDenied, validationFailed } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { auditBy, Caller, CommandDeps } from '../command';
import { presentFile } from './presenters';

export interface Upload { stream: Readable; filename: string; contentType: string }

/** The file, if the caller may open it: a file a workflow made also needs its owner's permission. */
export async function findOpenableFile(c: Caller, id: string): Promise<StoredFile> {
  const file = await findInTenant(StoredFile, c.tenantId, id, 'File');
  const owner = ownerOf(file);
  if (owner && !c.permissions.has(owner.permission)) {
    throw permissionDenied(`This file was made by ${owner.what}; opening it needs the permission '${owner.permission}'`, owner.permission);
  }
  return file;
}

/** Stores an upload of 1 to `config.limits.uploadBytes` bytes (413 over, 400 empty). */
export async function uploadFile(deps: CommandDeps, c: Caller, upload: Upload): Promise<StoredFile> {
  const limit = deps.config.limits.uploadBytes;
  let file: StoredFile;
  try {
    const meta = { tenantId: c.tenantId, filename: upload.filename.slice(0, 255), contentType: upload.contentType.slice(0, 200), createdBy: c.actor.id };
    // The file row and its audit event in one transaction.
    file = await storeStream(deps.blobs, meta, upload.stream, { maxBytes: limit, minBytes: 1 },
      (stored, transaction) => recordAudit({ ...auditBy(c), action: 'files.file.uploaded', entityType: 'file', entityId: stored.id, after: presentFile(stored) }, transaction));
  } catch (err) {
    if (err instanceof BlobTooLargeError) throw new ApiError(413, 'PAYLOAD_TOO_LARGE', `Files may be at most ${limit} bytes`);
    if (err instanceof ContentTooSmallError) throw validationFailed([{ path: '/requestBody', message: 'is empty: a file has at least one byte' }]);
    throw err;
  }
  return file;
}

/** Deletes a file; its bytes go just after, when no file of any tenant uses them (lib/files deleteFile). Also for the audience.files_purge job: only the store needed. */
export async function deleteStoredFile(deps: Pick<CommandDeps, 'blobs'>, c: Caller, id: string): Promise<{ bytesRemoved: Promise<boolean> }> {
  const file = await findOpenableFile(c, id);
  // A document's or an export's file goes with its owner (DELETE /v1/documents/{id}), never alone.
  return deleteFile(deps.blobs, file, async (transaction) => {
    const { count, what } = await fileDependents(file, transaction);
    if (count > 0) throw new ApiError(409, 'DEPENDENCY_EXISTS', `The file is used by ${what.join(' and ')}; delete that instead`, { count });
    await recordAudit({ ...auditBy(c), action: 'files.file.deleted', entityType: 'file', entityId: file.id, before: presentFile(file) }, transaction);
  });
}
