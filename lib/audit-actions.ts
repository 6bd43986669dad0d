// The catalogue of audit actions: every action written anywhere is named here (the type enforces it).
export const AUDIT_ACTIONS = {
  'identity.user.created': 'A user was added to the tenant',
  'identity.user.updated': 'A user\'s name, status or roles changed',
  'identity.role.created': 'A role was created',
  'identity.role.updated': 'A role\'s title or permissions changed',
  'identity.role.deleted': 'A role was deleted',
  'identity.apikey.created': 'An API key was created',
  'identity.apikey.revoked': 'An API key was revoked',
  'files.file.uploaded': 'A file was uploaded',
  'files.file.deleted': 'A file was deleted',
  'audit.export.requested': 'An export of the audit log was started',
  'audit.export.completed': 'An export of the audit log finished and its CSV is stored',
  'audit.export.failed': 'An export of the audit log failed',
} as const;

export type AuditAction = keyof typeof AUDIT_ACTIONS;
