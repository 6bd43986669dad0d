// Mapping templates: every save a new version (kept), a strong ETag per version, If-Match against lost updates.
import { Op, Sequelize, UniqueConstraintError, WhereOptions } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import { ApiError, notFound } from '../../api/errors';
import { paginate, type Page } from '../../api/conventions';
import { ImportTemplate, ImportTemplateVersion } from '../../db';
import { recordAudit } from '../../lib/audit';
import { assertMapping, type ImportCaller } from './commands';
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

/** A strong tag: one version is one exact representation. */
export const templateEtag = (version: number): string => `"${version}"`;

/**
 * If-Match, compared strongly (RFC 9110 §13.1.1): a weak tag never matches. Absent or `*`, anything goes;
 * otherwise a tag other than the current version's answers 412 and nothing is written.
 */
export function checkStrongIfMatch(ifMatch: string | undefined, current: string): void {
  if (!ifMatch || ifMatch.trim() === '*') return;
  if (!ifMatch.split(',').map((t) => t.trim()).includes(current)) {
    throw new ApiError(412, 'PRECONDITION_FAILED', `If-Match ${ifMatch} does not match the current version ${current}; read the template again`);
  }
}

function normalized(body: TemplateBody) {
  const target = importTarget(body.target);
  const fields = { name: body.name, target: target.name, source: body.source ?? {}, columns: body.columns, keyField: body.keyField ?? target.key, mergeStrategy: body.mergeStrategy ?? ('merge' as const) };
  assertMapping(target.name, fields);
  return fields;
}

const duplicateName = (name: string) => new ApiError(409, 'ALREADY_EXISTS', `A mapping template named "${name}" exists already`);

export async function listTemplates(tenantId: string, f: { target?: string }, page: { limit?: number; cursor?: string }): Promise<Page<ImportTemplate>> {
  const where: WhereOptions = f.target ? { tenantId, target: f.target } : { tenantId };
  return paginate(ImportTemplate, { where, limit: page.limit, cursor: page.cursor, order: [['name', 'ASC'], ['id', 'ASC']] });
}

export async function findTemplate(tenantId: string, id: string): Promise<ImportTemplate> {
  const t = await ImportTemplate.findOne({ where: { tenantId, id } });
  if (!t) throw notFound(`Mapping template ${id}`);
  return t;
}

export async function createTemplate(sequelize: Sequelize, who: ImportCaller, body: TemplateBody): Promise<ImportTemplate> {
  const fields = normalized(body);
  try {
    return await sequelize.transaction(async (transaction) => {
      const t = await ImportTemplate.create({ tenantId: who.tenantId, id: uuidv7(), version: 1, ...fields, createdBy: who.actor.id }, { transaction });
      await ImportTemplateVersion.create({ tenantId: who.tenantId, templateId: t.id, version: 1, ...fields, createdBy: who.actor.id }, { transaction });
      await recordAudit({ ...who, action: 'imports.template.created', entityType: 'import_template', entityId: t.id, after: { ...fields, version: 1 } }, transaction);
      return t;
    });
  } catch (err) {
    if (err instanceof UniqueConstraintError) throw duplicateName(body.name);
    throw err;
  }
}

export async function updateTemplate(sequelize: Sequelize, who: ImportCaller, id: string, body: TemplateBody, ifMatch: string | undefined): Promise<ImportTemplate> {
  const fields = normalized(body);
  try {
    return await sequelize.transaction(async (transaction) => {
      const t = await ImportTemplate.findOne({ where: { tenantId: who.tenantId, id }, transaction, lock: transaction.LOCK.UPDATE });
      if (!t) throw notFound(`Mapping template ${id}`);
      checkStrongIfMatch(ifMatch, templateEtag(t.version));
      const before = { version: t.version };
      Object.assign(t, fields, { version: t.version + 1 });
      await t.save({ transaction });
      await ImportTemplateVersion.create({ tenantId: who.tenantId, templateId: t.id, version: t.version, ...fields, createdBy: who.actor.id }, { transaction });
      await recordAudit({ ...who, action: 'imports.template.updated', entityType: 'import_template', entityId: t.id, before, after: { ...fields, version: t.version } }, transaction);
      return t;
    });
  } catch (err) {
    if (err instanceof UniqueConstraintError) throw duplicateName(body.name);
    throw err;
  }
}

export async function deleteTemplate(sequelize: Sequelize, who: ImportCaller, id: string, ifMatch: string | undefined): Promise<void> {
  await sequelize.transaction(async (transaction) => {
    const t = await ImportTemplate.findOne({ where: { tenantId: who.tenantId, id }, transaction, lock: transaction.LOCK.UPDATE });
    if (!t) throw notFound(`Mapping template ${id}`);
    checkStrongIfMatch(ifMatch, templateEtag(t.version));
    await t.destroy({ transaction });
    await recordAudit({ ...who, action: 'imports.template.deleted', entityType: 'import_template', entityId: t.id, before: { name: t.name, version: t.version } }, transaction);
  });
}

export async function templateVersions(tenantId: string, id: string): Promise<ImportTemplateVersion[]> {
  const t = await findTemplate(tenantId, id);
  return ImportTemplateVersion.findAll({ where: { tenantId, templateId: t.id, version: { [Op.gte]: 1 } }, order: [['version', 'DESC']] });
}
