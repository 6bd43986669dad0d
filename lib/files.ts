// The file service shared by the files API and by activities that produce files (exports, PDFs).
import { Readable } from 'node:stream';
import { Op } from 'sequelize';
import { StoredFile } from '../db';
import { BlobStore } from './blob-store';

export interface NewFile {
  tenantId: string;
  filename: string;
  contentType: string;
  createdBy: string | null;
  /** A natural key for files made by workflows: storing twice under one key returns the first file. */
  originKey?: string;
}

export async function storeStream(blobs: BlobStore, meta: NewFile, source: Readable, maxBytes?: number): Promise<StoredFile> {
  const { sha256, size } = await blobs.put(source, { maxBytes });
  return createFileRow(meta, sha256, size);
}

export async function storeLocalFile(blobs: BlobStore, meta: NewFile, localPath: string): Promise<StoredFile> {
  if (meta.originKey) {
    const existing = await StoredFile.findOne({ where: { tenantId: meta.tenantId, originKey: meta.originKey } });
    if (existing) return existing;
  }
  const { sha256, size } = await blobs.putFile(localPath);
  return createFileRow(meta, sha256, size);
}

async function createFileRow(meta: NewFile, sha256: string, size: number): Promise<StoredFile> {
  const values = { tenantId: meta.tenantId, sha256, size, contentType: meta.contentType, filename: meta.filename, createdBy: meta.createdBy, originKey: meta.originKey ?? null };
  if (!meta.originKey) return StoredFile.create(values);
  // A concurrent retry may have won the race on the unique (tenant, origin_key): return its row.
  const [row] = await StoredFile.findOrCreate({ where: { tenantId: meta.tenantId, originKey: meta.originKey }, defaults: values });
  return row;
}

/** Deletes the row, and the bytes once no other row (of any tenant) points at them. */
export async function deleteFile(blobs: BlobStore, file: StoredFile): Promise<void> {
  await file.destroy();
  const others = await StoredFile.count({ where: { sha256: file.sha256, id: { [Op.ne]: file.id } } });
  if (others === 0) await blobs.remove(file.sha256);
}
