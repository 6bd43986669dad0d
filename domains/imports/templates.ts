// Mapping templates: every save a new version (kept); the caller's precondition (If-Match on the version's
// strong ETag, api/conventions.ts) guards against lost updates.
import { Op, UniqueConstraintError } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import { Page, paginateVersions } from '../../api/conventions';
import { ImportTemplate, ImportTemplateVersion } from '../../db/models/imports';
import { recordAudit } from '../../lib/audit';
import { ApiError } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { auditBy, Caller, CommandDeps, Precondition } from '../command';
import { assertMapping } from './commands';
import { importTarget } from './targets';
import type { ColumnMapping, MergeStrategy, SourceOptions } from './types';

export interface TemplateBody {
  name: string;
  target: string;
  source?: SourceOptions;
  columns: ColumnMapping[];
  keyField?: string;
  mergeStrategy?: MergeStrategy;
}

function normalized(body: TemplateBody) {
  const target = importTarget(body.target);
  const fields = { name: body.name, target: target.name, source: body.source ?? {}, columns: body.columns, keyField: body.keyField ?? target.key, mergeStrategy: body.mergeStrategy ?? ('merge' as const) };
  assertMapping(target.name, fields);
  return fields;
}

const duplicateName = (name: string) => new ApiError(409, 'ALREADY_EXISTS', `A mapping template named "${name}" exists already`);

export const findTemplate = (tenantId: string, id: string): Promise<ImportTemplate> => findInTenant(ImportTemplate, tenantId, id, 'Mapping template');

export async function createTemplate(deps: CommandDeps, c: Caller, body: TemplateBody): Promise<ImportTemplate> {
  const fields = normalized(body);
  try {
    return await deps.sequelize.transaction(async (transaction) => {
      const t = await ImportTemplate.create({ tenantId: c.tenantId, id: uuidv7(), version: 1, ...fields, createdBy: c.actor.id }, { transaction });
      await ImportTemplateVersion.create({ tenantId: c.tenantId, templateId: t.id, version: 1, ...fields, createdBy: c.actor.id }, { transaction });
      await recordAudit({ ...auditBy(c), action: 'imports.template.created', entityType: 'import_template', entityId: t.id, after: { ...fields, version: 1 } }, transaction);
      return t;
    });
  } catch (err) {
    if (err instanceof UniqueConstraintError) throw duplicateName(body.name);
    throw err;
  }
}

export async function updateTemplate(deps: CommandDeps, c: Caller, id: string, body: TemplateBody, precondition?: Precondition): Promise<ImportTemplate> {
  const fields = normalized(body);
  try {
    return await deps.sequelize.transaction(async (transaction) => {
      const t = await findInTenant(ImportTemplate, c.tenantId, id, 'Mapping template', { transaction, lock: transaction.LOCK.UPDATE });
      precondition?.(t.version);
      const before = { version: t.version };
      Object.assign(t, fields, { version: t.version + 1 });
      await t.save({ transaction });
      await ImportTemplateVersion.create({ tenantId: c.tenantId, templateId: t.id, version: t.version, ...fields, createdBy: c.actor.id }, { transaction });
      await recordAudit({ ...auditBy(c), action: 'imports.template.updated', entityType: 'import_template', entityId: t.id, before, after: { ...fields, version: t.version } }, transaction);
      return t;
    });
  } catch (err) {
    if (err instanceof UniqueConstraintError) throw duplicateName(body.name);
    throw err;
  }
}

export async function deleteTemplate(deps: CommandDeps, c: Caller, id: string, precondition?: Precondition): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const t = await findInTenant(ImportTemplate, c.tenantId, id, 'Mapping template', { transaction, lock: transaction.LOCK.UPDATE });
    precondition?.(t.version);
    await t.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'imports.template.deleted', entityType: 'import_template', entityId: t.id, before: { name: t.name, version: t.version } }, transaction);
  });
}

/** A page of a template's versions, newest first (`limit`, default VERSION_LIST_LIMIT, and the cursor of the page before). */
export async function templateVersions(tenantId: string, id: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<ImportTemplateVersion>> {
  const t = await findTemplate(tenantId, id);
  return paginateVersions(ImportTemplateVersion, { tenantId, templateId: t.id, version: { [Op.gte]: 1 } }, query);
}
