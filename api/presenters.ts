// Models → API JSON, in one place, so a field is named the same in every route. The return types are
// generated from openapi.yaml, so a presenter that drifts from the contract does not compile.
import { ApiKey, AuditEvent, AuditExport, Role, StoredFile, Tenant, User } from '../db';
import { Schemas } from './schemas';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export const presentTenant = (t: Tenant): Schemas['Tenant'] => ({ id: t.id, name: t.name, slug: t.slug, createdAt: t.createdAt.toISOString() });

export const presentUser = (u: User): Schemas['User'] => ({
  id: u.id, email: u.email, name: u.name, active: u.active,
  roles: (u.roles ?? []).map((r) => r.key).sort(),
  createdAt: u.createdAt.toISOString(), updatedAt: u.updatedAt.toISOString(),
});

export const presentRole = (r: Role): Schemas['Role'] => ({
  key: r.key, title: r.title, permissions: r.permissions, createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString(),
});

export const presentApiKey = (k: ApiKey): Schemas['ApiKey'] => ({
  id: k.id, name: k.name, prefix: `dk_${k.prefix}`, userId: k.userId, scopes: k.scopes,
  expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt), lastUsedAt: iso(k.lastUsedAt), createdAt: k.createdAt.toISOString(),
});

export const presentAuditEvent = (e: AuditEvent): Schemas['AuditEvent'] => ({
  id: String(e.id), actorType: e.actorType, actorId: e.actorId, action: e.action, entityType: e.entityType, entityId: e.entityId,
  before: (e.before ?? null) as Record<string, unknown> | null, after: (e.after ?? null) as Record<string, unknown> | null, requestId: e.requestId, workflowId: e.workflowId, createdAt: e.createdAt.toISOString(),
});

export const presentFile = (f: StoredFile): Schemas['File'] => ({
  id: f.id, filename: f.filename, contentType: f.contentType, size: f.size, sha256: f.sha256, createdBy: f.createdBy,
  createdAt: f.createdAt.toISOString(), downloadUrl: `/v1/files/${f.id}/content`,
});

export const presentAuditExport = (x: AuditExport): Schemas['AuditExport'] => {
  const progress = x.status === 'ready' ? 1 : x.totalRows ? Math.min(1, x.rowsWritten / x.totalRows) : 0;
  return {
    id: x.id, status: x.status, filters: x.filters, totalRows: x.totalRows, rowsWritten: x.rowsWritten,
    progress: Math.round(progress * 1000) / 1000, fileId: x.fileId,
    downloadUrl: x.status === 'ready' ? `/v1/audit-exports/${x.id}/download` : null,
    error: x.error, workflowId: x.workflowId, createdAt: x.createdAt.toISOString(), completedAt: iso(x.completedAt),
  };
};
