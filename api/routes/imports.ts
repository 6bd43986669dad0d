// Imports (domains/imports): options, mapping templates, runs (start, read, cancel, revert) and their rejections.
import type { WhereOptions } from 'sequelize';
import { ImportRun, ImportTemplate } from '../../db/models/imports';
import { cancelImport, findImport, importOptions, requestImport, revertImportRun } from '../../domains/imports/commands';
import { presentImport, presentRejection, presentTemplate } from '../../domains/imports/presenters';
import { listRejections, rejectionsCsv } from '../../domains/imports/rejections';
import * as templates from '../../domains/imports/templates';
import { validationFailed } from '../../lib/problems';
import { accepted } from '../async-jobs';
import { ifMatch, page, paginate, respond, versionEtag } from '../conventions';
import { contentDisposition } from '../downloads';
import { caller, commandCaller, RouteDeps, RouteHandlers } from '../types';

export function importRoutes(deps: RouteDeps) {
  const { sequelize } = deps;

  return {
    async getImportOptions(_input, ctx) {
      ctx.body = importOptions(deps.config.imports);
    },

    async listImportTemplates({ query }, ctx) {
      const where: WhereOptions = query.target ? { tenantId: caller(ctx).tenant.id, target: query.target } : { tenantId: caller(ctx).tenant.id };
      ctx.body = page(await paginate(ImportTemplate, { where, limit: query.limit, cursor: query.cursor, order: [['name', 'ASC'], ['id', 'ASC']] }), presentTemplate);
    },
    async createImportTemplate({ body }, ctx) {
      const t = await templates.createTemplate(deps, commandCaller(ctx), body);
      respond(ctx, presentTemplate(t), { status: 201, location: `/v1/import-templates/${t.id}`, etag: versionEtag(t.version) });
    },
    async getImportTemplate({ params }, ctx) {
      const t = await templates.findTemplate(caller(ctx).tenant.id, params.templateId);
      respond(ctx, presentTemplate(t), { etag: versionEtag(t.version) });
    },
    async updateImportTemplate({ params, body }, ctx) {
      const t = await templates.updateTemplate(deps, commandCaller(ctx), params.templateId, body, ifMatch(ctx));
      respond(ctx, presentTemplate(t), { etag: versionEtag(t.version) });
    },
    async deleteImportTemplate({ params }, ctx) {
      await templates.deleteTemplate(deps, commandCaller(ctx), params.templateId, ifMatch(ctx));
      ctx.status = 204;
    },
    async listImportTemplateVersions({ params, query }, ctx) {
      const id = params.templateId;
      const versions = await templates.templateVersions(caller(ctx).tenant.id, id, query);
      ctx.body = page(versions, (v) => presentTemplate(Object.assign(v, { id })));
    },

    async listImports({ query }, ctx) {
      const where: Record<string, unknown> = { tenantId: caller(ctx).tenant.id };
      if (query.phase) where.phase = query.phase;
      if (query.target) where.target = query.target;
      if (query.dryRun !== undefined) where.dryRun = query.dryRun;
      ctx.body = page(await paginate(ImportRun, { where, limit: query.limit, cursor: query.cursor }), presentImport);
    },
    async createImport({ body }, ctx) {
      const run = await requestImport(deps, commandCaller(ctx), body);
      accepted(ctx, presentImport(run), `/v1/imports/${run.id}`);
    },
    async getImport({ params }, ctx) {
      ctx.body = presentImport(await findImport(caller(ctx).tenant.id, params.importId));
    },
    async cancelImport({ params }, ctx) {
      ctx.body = presentImport(await cancelImport(deps, commandCaller(ctx), params.importId));
    },
    async revertImport({ params }, ctx) {
      const { run, result } = await revertImportRun(deps, commandCaller(ctx), params.importId);
      if (result) ctx.body = { ...result, import: presentImport(run) };
      else accepted(ctx, presentImport(run), `/v1/imports/${run.id}`);
    },
    async listImportRejections({ params, query }, ctx) {
      const run = await findImport(caller(ctx).tenant.id, params.importId);
      const after = query.cursor === undefined ? 0 : Number(query.cursor);
      if (!Number.isInteger(after) || after < 0) throw validationFailed([{ path: '/query/cursor', message: 'is not a cursor returned by this list' }]);
      const limit = query.limit ?? 50;
      const rows = await listRejections(sequelize, { tenantId: run.tenantId, importId: run.id }, { after, limit: limit + 1, code: query.code });
      const items = rows.slice(0, limit);
      ctx.body = { items: items.map(presentRejection), nextCursor: rows.length > limit ? String(items[items.length - 1].row) : null };
    },
    async downloadImportRejections({ params }, ctx) {
      const run = await findImport(caller(ctx).tenant.id, params.importId);
      ctx.set('Content-Disposition', contentDisposition(`rejections-${run.id}.csv`));
      ctx.type = 'text/csv; charset=utf-8';
      ctx.body = rejectionsCsv(sequelize, { tenantId: run.tenantId, importId: run.id });
    },
  } satisfies RouteHandlers;
}
