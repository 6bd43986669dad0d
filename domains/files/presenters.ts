// Stored files → API JSON.
import type { StoredFile } from '../../db/models/files';
import type { Schemas } from '../schemas';

export const presentFile = (f: StoredFile): Schemas['File'] => ({
  id: f.id, filename: f.filename, contentType: f.contentType, size: f.size, sha256: f.sha256, createdBy: f.createdBy,
  createdAt: f.createdAt.toISOString(), downloadUrl: `/v1/files/${f.id}/content`,
});
