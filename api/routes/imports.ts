// Imports (domains/imports): options, mapping templates, runs (start, read, cancel, revert) and their rejections.
import type { WhereOptions } from 'sequelize';
import { ImportRun } from '../../db';
import { cancelImport, findImport, importOptions, requestImport, revertImportRun, type ImportCaller, type ImportRequest } from '../../domains/imports/commands';
import { presentImport, presentRejection, presentTemplate } from '../../domains/imports/presenters';
import { listRejections, rejectionsCsv } from '../../domains/imports/rejections';
import * as templates from '../../domains/imports/templates';
import { paginate, page, queryOf, respond } from '../conventions';
import { validationFailed } from '../errors';
import { Schemas } from '../schemas';
import { auditContext, caller, Handlers, RouteDeps } from '../types';
import { contentDisposition } from './files';

export function importRoutes(deps: RouteDeps): Handlers {
  const { sequelize } = deps;
  const limits = { maxFileBytes: deps.config.imports.maxFileBytes, maxUncompressedBytes: deps.config.imports.maxUncompressedBytes };
  const who = (ctx: Parameters<Handlers[string]>[1]): ImportCaller => ({ ...auditContext(ctx), permissions: caller(ctx).permissions });
  const ifMatch = (ctx: Parameters<Handlers[string]>[1]) => ctx.get('if-match') || undefined;

  return {
    async getImportOptions(_c, ctx) {
      ctx.body = importOptions(limits);
    },

    async listImportTemplates(c, ctx) {
      const q = queryOf(c);
      ctx.body = page(await templates.listTemplates(caller(ctx).tenant.id, { target: q.str('target') }, { limit: q.int('limit'), cursor: q.str('cursor') }), presentTemplate);
    },
    async createImportTemplate(c, ctx) {
      const t = await templates.createTemplate(sequelize, who(ctx), c.request.requestBody as Schemas['ImportTemplateBody'] as templates.TemplateBody);
      respond(ctx, presentTemplate(t), { status: 201, location: `/v1/import-templates/${t.id}`, etag: templates.templateEtag(t.version) });
    },
    async getImportTemplate(c, ctx) {
      const t = await templates.findTemplate(caller(ctx).tenant.id, c.request.params.templateId as string);
      respond(ctx, presentTemplate(t), { etag: templates.templateEtag(t.version) });
    },
    async updateImportTemplate(c, ctx) {
      const t = await templates.updateTemplate(sequelize, who(ctx), c.request.params.templateId as string, c.request.requestBody as Schemas['ImportTemplateBody'] as templates.TemplateBody, ifMatch(ctx));
      respond(ctx, presentTemplate(t), { etag: templates.templateEtag(t.version) });
    },
    async deleteImportTemplate(c, ctx) {
      await templates.deleteTemplate(sequelize, who(ctx), c.request.params.templateId as string, ifMatch(ctx));
      ctx.status = 204;
    },
    async listImportTemplateVersions(c, ctx) {
      const id = c.request.params.templateId as string;
      const versions = await templates.templateVersions(caller(ctx).tenant.id, id);
      ctx.body = { items: versions.map((v) => presentTemplate(Object.assign(v, { id }))) };
    },

    async listImports(c, ctx) {
      const q = queryOf(c);
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      if (q.str('phase')) where.phase = q.str('phase');
      if (q.str('target')) where.target = q.str('target');
      if (q.bool('dryRun') !== undefined) where.dryRun = q.bool('dryRun');
      ctx.body = page(await paginate(ImportRun, { where: where as WhereOptions, limit: q.int('limit'), cursor: q.str('cursor') }), presentImport);
    },
    async createImport(c, ctx) {
      const run = await requestImport({ sequelize, client: deps.temporal.client, blobs: deps.blobs, limits }, who(ctx), c.request.requestBody as ImportRequest);
      deps.metrics.workflowStarts.inc({ workflow_type: 'importWorkflow' });
      respond(ctx, presentImport(run), { status: 202, location: `/v1/imports/${run.id}` });
    },
    async getImport(c, ctx) {
      ctx.body = presentImport(await findImport(caller(ctx).tenant.id, c.request.params.importId as string));
    },
    async cancelImport(c, ctx) {
      ctx.body = presentImport(await cancelImport(deps.temporal.client, who(ctx), c.request.params.importId as string));
    },
    async revertImport(c, ctx) {
      const { run, result } = await revertImportRun(sequelize, who(ctx), c.request.params.importId as string);
      ctx.body = { ...result, import: presentImport(run) };
    },
    async listImportRejections(c, ctx) {
      const q = queryOf(c);
      const run = await findImport(caller(ctx).tenant.id, c.request.params.importId as string);
      const cursor = q.str('cursor');
      const after = cursor === undefined ? 0 : Number(cursor);
      if (!Number.isInteger(after) || after < 0) throw validationFailed([{ path: '/query/cursor', message: 'is not a cursor returned by this list' }]);
      const limit = q.int('limit') ?? 50;
      const rows = await listRejections(sequelize, { tenantId: run.tenantId, importId: run.id }, { after, limit: limit + 1, code: q.str('code') });
      const items = rows.slice(0, limit);
      ctx.body = { items: items.map(presentRejection), nextCursor: rows.length > limit ? String(items[items.length - 1].row) : null };
    },
    async downloadImportRejections(c, ctx) {
      const run = await findImport(caller(ctx).tenant.id, c.request.params.importId as string);
      ctx.set('Content-Disposition', contentDisposition(`rejections-${run.id}.csv`));
      ctx.type = 'text/csv; charset=utf-8';
      ctx.body = rejectionsCsv(sequelize, { tenantId: run.tenantId, importId: run.id });
    },
  };
}
