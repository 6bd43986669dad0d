// The file service shared by the files API and by activities that produce files (exports, PDFs).
//
// Bytes are content-addressed and shared by every tenant, so their lifetime is kept in Postgres: a
// `blobs` row per sha256. Storing a file locks that row (an upsert) in the transaction that publishes
// the bytes and inserts the file row; removing bytes locks it too and checks, after taking the lock,
// that no file row of any tenant uses them. An upload and a delete of the same bytes therefore never
// interleave: either the upload commits first and the bytes stay, or the removal commits first and the
// upload publishes its own copy again. Nothing here depends on the disk (an S3 store works the same way).
import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { QueryTypes, Transaction } from 'sequelize';
import { StoredFile } from '../db/models/files';
import { BlobStore, StagedBlob } from './blob-store';

export interface NewFile {
  tenantId: string;
  filename: string;
  contentType: string;
  createdBy: string | null;
  /** A natural key for files made by workflows: storing twice under one key returns the first file. */
  originKey?: string;
}

/** Content with fewer bytes than an upload's `minBytes`: nothing is stored. */
export class ContentTooSmallError extends Error {
  constructor(readonly minBytes: number) {
    super(`content has fewer than ${minBytes} bytes`);
  }
}

/** Written in the transaction that inserts a new file row (the upload's audit event). */
export type OnStored = (file: StoredFile, transaction: Transaction) => Promise<void>;

export async function storeStream(blobs: BlobStore, meta: NewFile, source: Readable, limits: { maxBytes?: number; minBytes?: number } = {}, onStored?: OnStored): Promise<StoredFile> {
  const staged = await blobs.stage(source, { maxBytes: limits.maxBytes });
  try {
    if (limits.minBytes !== undefined && staged.size < limits.minBytes) throw new ContentTooSmallError(limits.minBytes);
    return await storeStaged(blobs, meta, staged, onStored);
  } finally {
    await blobs.discard(staged);
  }
}

export async function storeLocalFile(blobs: BlobStore, meta: NewFile, localPath: string): Promise<StoredFile> {
  if (meta.originKey) {
    const existing = await StoredFile.findOne({ where: { tenantId: meta.tenantId, originKey: meta.originKey } });
    if (existing) return existing;
  }
  return storeStaged(blobs, meta, await blobs.stageFile(localPath));
}

const sequelize = () => StoredFile.sequelize!;

/** Upserts the blob's row (locking it until `transaction` ends) and marks it as just claimed. */
async function claimBlob(staged: StagedBlob, transaction?: Transaction): Promise<void> {
  await sequelize().query(
    `INSERT INTO blobs (sha256, size, claimed_at, created_at) VALUES (:sha256, :size, now(), now())
     ON CONFLICT (sha256) DO UPDATE SET claimed_at = now()`,
    { replacements: { sha256: staged.sha256, size: staged.size }, transaction },
  );
}

/** Publishes staged bytes and inserts their file row; the caller discards what was not published. */
async function storeStaged(blobs: BlobStore, meta: NewFile, staged: StagedBlob, onStored?: OnStored): Promise<StoredFile> {
  // Claimed once on its own first: if this process dies before the file row commits, the blob row is
  // left without files and `files.orphan_purge` removes its bytes.
  await claimBlob(staged);
  const { file, created } = await sequelize().transaction(async (transaction) => {
    await claimBlob(staged, transaction);
    await blobs.publish(staged);
    const values = {
      tenantId: meta.tenantId, sha256: staged.sha256, size: staged.size, contentType: meta.contentType,
      filename: meta.filename, createdBy: meta.createdBy, originKey: meta.originKey ?? null,
    };
    // A concurrent retry may have won the race on the unique (tenant, origin_key): return its row.
    const [row, made] = meta.originKey
      ? await StoredFile.findOrCreate({ where: { tenantId: meta.tenantId, originKey: meta.originKey }, defaults: values, transaction })
      : [await StoredFile.create(values, { transaction }), true];
    if (made) await onStored?.(row, transaction);
    return { file: row, created: made };
  });
  // The retry that lost published bytes no file may use.
  if (!created && file.sha256 !== staged.sha256) await collectBlob(blobs, staged.sha256);
  return file;
}

/** Byte removals started by deleteFile, two at a time in this process. */
const removals = pLimit(2);

/**
 * Deletes the file row (and whatever `also` writes, in the same transaction), then starts removing its bytes if no file
 * row of any tenant uses them any more: `bytesRemoved` settles when that is done (false if they stay, or if removing
 * them failed: the files.orphan_purge job's sweep of unused blobs finds them again). The API answers without waiting
 * for it: removing bytes takes a disk unlink or an S3 DELETE and keeping shared ones neither, so a delete that waited
 * would tell a tenant by its time whether another tenant stores the same bytes. Removals run two at a time per process
 * (a purge deleting thousands of files must not take every pooled connection).
 */
export async function deleteFile(blobs: BlobStore, file: StoredFile, also?: (transaction: Transaction) => Promise<unknown>): Promise<{ bytesRemoved: Promise<boolean> }> {
  await sequelize().transaction(async (transaction) => {
    await file.destroy({ transaction });
    await also?.(transaction);
  });
  return { bytesRemoved: removals(() => collectBlob(blobs, file.sha256)).catch(() => false) };
}

/**
 * Files made by workflows belong to what made them (their origin key says what) and are read with that
 * resource's permission, not with `files.read`: an audit export's CSV is audit data, a document's PDF
 * a document.
 */
const OWNERS = [
  { prefix: 'audit-export:', table: 'audit_exports', permission: 'audit.read', what: 'an audit export', noun: 'audit export' },
  { prefix: 'document:', table: 'documents', permission: 'documents.read', what: 'a document', noun: 'document' },
  { prefix: 'subscriber-export:', table: 'subscriber_exports', permission: 'audience.read', what: 'a subscriber export', noun: 'subscriber export' },
] as const;

export type FileOwner = (typeof OWNERS)[number];

export function ownerOf(file: Pick<StoredFile, 'originKey'>): FileOwner | undefined {
  return file.originKey ? OWNERS.find((o) => file.originKey!.startsWith(o.prefix)) : undefined;
}

/** The permissions of workflow-made files (what `files.*` alone cannot open). */
export const OWNED_FILE_PREFIXES = OWNERS.map((o) => ({ prefix: o.prefix, permission: o.permission }));

/** An import in a phase that still reads its file (SQL on `imports`): the file's bytes must stay until it has staged them. */
export const IMPORT_READING = "phase IN ('parsing', 'staging')";

/**
 * How many documents, audit exports and running imports use the file: those that point at it, and the one its origin key
 * names while it exists (its workflow may not have pointed at the file yet). Locks the rows it counts,
 * so a delete that checks first cannot interleave with a new reference.
 */
export async function fileDependents(file: StoredFile, transaction: Transaction): Promise<{ count: number; what: string[] }> {
  const owner = ownerOf(file);
  const ownerId = owner ? file.originKey!.slice(owner.prefix.length) : null;
  const what: string[] = [];
  let count = 0;
  for (const o of OWNERS) {
    const rows = await sequelize().query(
      `SELECT id FROM ${o.table} WHERE tenant_id = :tenantId AND (file_id = :fileId ${owner === o && /^[0-9a-f-]{36}$/.test(ownerId!) ? 'OR id = :ownerId' : ''}) FOR UPDATE`,
      { replacements: { tenantId: file.tenantId, fileId: file.id, ownerId }, type: QueryTypes.SELECT, transaction },
    );
    if (rows.length) what.push(`${rows.length} ${o.noun}${rows.length === 1 ? '' : 's'}`);
    count += rows.length;
  }
  const importing = await sequelize().query(
    `SELECT id FROM imports WHERE tenant_id = :tenantId AND file_id = :fileId AND ${IMPORT_READING} FOR UPDATE`,
    { replacements: { tenantId: file.tenantId, fileId: file.id }, type: QueryTypes.SELECT, transaction },
  );
  if (importing.length) what.push(`${importing.length} running import${importing.length === 1 ? '' : 's'}`);
  count += importing.length;
  return { count, what };
}

/**
 * Removes a blob's bytes and row when no file row uses them, under the row's lock. A blob locked by an
 * upload in flight is skipped (that upload is about to add a file row; if it fails, the sweep finds it).
 * Returns whether the bytes were removed.
 */
export async function collectBlob(blobs: BlobStore, sha256: string, claimedBefore?: Date): Promise<boolean> {
  return sequelize().transaction(async (transaction) => {
    const locked = await sequelize().query(
      `SELECT sha256 FROM blobs WHERE sha256 = :sha256 ${claimedBefore ? 'AND claimed_at < :claimedBefore' : ''} FOR UPDATE SKIP LOCKED`,
      { replacements: { sha256, claimedBefore: claimedBefore ?? null }, type: QueryTypes.SELECT, transaction },
    );
    if (locked.length === 0) return false;
    // A new statement under READ COMMITTED: it sees every file row committed before the lock was ours.
    const used = await sequelize().query('SELECT 1 FROM files WHERE sha256 = :sha256 LIMIT 1', { replacements: { sha256 }, type: QueryTypes.SELECT, transaction });
    if (used.length > 0) return false;
    // Bytes first, row second, both before the lock is released: a failed removal keeps the row (and
    // the sweep retries it); a failed commit after the removal leaves a row without bytes or files,
    // which an upload of the same bytes publishes again.
    await blobs.remove(sha256);
    await sequelize().query('DELETE FROM blobs WHERE sha256 = :sha256', { replacements: { sha256 }, transaction });
    return true;
  });
}

/** Blobs no file row uses that were last claimed before `claimedBefore` (crashed uploads, cascaded deletes). */
export async function unusedBlobs(claimedBefore: Date, limit = 1000): Promise<string[]> {
  const rows = await sequelize().query<{ sha256: string }>(
    `SELECT b.sha256 FROM blobs b WHERE b.claimed_at < :claimedBefore AND NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = b.sha256) LIMIT :limit`,
    { replacements: { claimedBefore, limit }, type: QueryTypes.SELECT },
  );
  return rows.map((r) => r.sha256);
}
