// Every domain's activities, built from their dependencies (db models are initialised by the caller).
import { BlobStore } from '../lib/blob-store';
import { createAuditActivities } from './audit';

export interface ActivityDeps {
  blobs: BlobStore;
  exportPageSize?: number;
  exportPagePauseMs?: number;
}

export function createActivities(deps: ActivityDeps) {
  return { ...createAuditActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
