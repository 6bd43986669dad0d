// Document commands: save templates (every save a version), preview them, request documents and batches,
// delete a document. Starting a document job (requestDocument) is shared with other domains (an approved
// purchase order): one row in `documents` (the read model) and one workflow `documents:<tenant>:<id>`.
import { randomUUID } from 'node:crypto';
import { ActivityFailure, ApplicationFailure, type Client, TimeoutFailure, WorkflowFailedError } from '@temporalio/client';
import { Op, Transaction, WhereOptions } from 'sequelize';
import {
  Document, DocumentBatch, DocumentOutput, DocumentTemplate, DocumentTemplateVersion, TemplateParts, TemplateSettings,
} from '../../db/models/documents';
import { StoredFile } from '../../db/models/files';
import type { documentBatchWorkflow, documentPreviewWorkflow, documentWorkflow } from '../../workflows/documents';
import {
  DOCUMENT_BATCHES_DOMAIN, DOCUMENT_PATCHES, DOCUMENT_PREVIEWS_DOMAIN, DOCUMENTS_DOMAIN, DOCUMENTS_TASK_QUEUE, TEMPLATE_RENDER_ERROR,
} from '../../workflows/documents.api';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { AuditInput, createWithAudit, destroyWithAudit, recordAudit } from '../../lib/audit';
import { deleteFile } from '../../lib/files';
import { ApiError, FieldError, notFound, serviceUnavailable, validationFailed } from '../../lib/problems';
import { recordStartIntent, StartBusinessWorkflow, startBusinessWorkflow, startIntent, startOrUndo } from '../../lib/temporal';
import { findInTenant } from '../../lib/tenancy';
import { auditBy, Caller, CommandDeps, Precondition } from '../command';
import type { Schemas } from '../schemas';
import { templateWork, workPool } from '../work-pool';
import { presentDocument } from './presenters';
import { PART_LIMITS, PART_NAMES, PARTIAL_NAME, PARTS_TOTAL_LIMIT, TEMPLATE_LIMITS } from './templates';

interface DocumentRequestBase {
  tenantId: string;
  template: DocumentTemplate;
  data: Record<string, unknown>;
  output: DocumentOutput;
  fileName?: string;
  objectType?: string | null;
  objectId?: string | null;
  createdBy: string | null;
}

/**
 * Either `originKey`, a natural key: the same key never makes a second document (a retried activity, a
 * replayed hook); or `audit`, the API caller's context: the row and its `documents.document.requested`
 * event are written together.
 */
export type DocumentRequest = DocumentRequestBase & (
  | { originKey: string; audit?: never }
  | { originKey?: never; audit: Omit<AuditInput, 'action' | 'entityType' | 'entityId' | 'after' | 'workflowId'> }
);

export const defaultFileName = (code: string, output: DocumentOutput) => `${code}.${output}`;

export async function requestDocument(client: Client, r: DocumentRequest): Promise<Document> {
  const id = randomUUID();
  const values = {
    id, tenantId: r.tenantId, templateId: r.template.id, templateCode: r.template.code, templateVersion: r.template.version,
    batchId: null, batchIndex: null, output: r.output, fileName: r.fileName ?? defaultFileName(r.template.code, r.output),
    objectType: r.objectType ?? null, objectId: r.objectId ?? null, data: r.data, status: 'queued' as const,
    originKey: r.originKey ?? null, workflowId: businessWorkflowId({ domain: DOCUMENTS_DOMAIN, tenantId: r.tenantId, entityId: id }), createdBy: r.createdBy,
  };
  const requested = { tenantId: r.tenantId, action: 'documents.document.requested', entityType: 'document', entityId: id } as const;
  const startOf = (documentId: string): StartBusinessWorkflow<typeof documentWorkflow> => ({
    workflowType: 'documentWorkflow', taskQueue: DOCUMENTS_TASK_QUEUE, domain: DOCUMENTS_DOMAIN, tenantId: r.tenantId,
    entityType: 'document', entityId: documentId, initialStatus: 'queued', args: [{ tenantId: r.tenantId, documentId, patches: DOCUMENT_PATCHES }],
  });
  const doc = r.originKey !== undefined
    // Asked for by an activity, which Temporal retries until this start is made: no start intent needed.
    ? (await Document.findOrCreate({ where: { tenantId: r.tenantId, originKey: r.originKey }, defaults: values }))[0]
    // One statement: no window in which the document exists but its request was never audited, or its
    // start intent not recorded.
    : await createWithAudit(Document, values, { ...r.audit, ...requested, after: { templateCode: r.template.code, templateVersion: r.template.version }, workflowId: values.workflowId }, [startIntent(startOf(id))]);
  if (doc.status === 'ready' || doc.status === 'failed') return doc;
  // A queued row without its workflow would never render (and would block its template's deletion).
  await startOrUndo(
    () => startBusinessWorkflow(client, startOf(doc.id)),
    // Never requested, then: the row goes, and with it the audit event written beside it.
    () => (r.audit ? destroyWithAudit(doc, requested) : doc.destroy()),
  );
  return doc;
}

// Templates

const DEFAULT_MARGINS = { top: '20mm', right: '15mm', bottom: '20mm', left: '15mm' };

type TemplateBody = Schemas['DocumentTemplateUpdate'];
type TemplateFields = { name: string; description: string | null; settings: TemplateSettings; parts: TemplateParts };

function settingsOf(body: TemplateBody): TemplateSettings {
  return {
    paperSize: body.paperSize ?? 'A4', orientation: body.orientation ?? 'portrait',
    margins: { ...DEFAULT_MARGINS, ...(body.margins ?? {}) }, variables: body.variables ?? 'lenient',
  };
}

/** A string's length as JSON Schema's maxLength counts it: code points, not UTF-16 code units. */
const charCount = (s: string) => s.length - (s.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0);

/**
 * Where a template's parts break the contract's caps (PART_LIMITS: each part's length, each partial's, how many
 * partials), in the words of the JSON body's validator, and the cap on all of them together (PARTS_TOTAL_LIMIT, which
 * JSON Schema cannot express), so both ways of saving parts answer the same 400 VALIDATION_FAILED. `at` names where
 * a part (`base`, `partials.<name>`, or `partials`, the map) was sent; `all`, what made the parts too long together.
 */
function partLimitErrors(parts: TemplateParts, at: (part: string) => string, all: string): FieldError[] {
  const errors: FieldError[] = [];
  const tooLong = (part: string, text: string, max: number) => {
    if (text.length > max && charCount(text) > max) errors.push({ path: at(part), message: `must NOT have more than ${max} characters` });
  };
  for (const p of PART_NAMES) tooLong(p, parts[p], PART_LIMITS[p]);
  const names = Object.keys(parts.partials);
  if (names.length > PART_LIMITS.partials) errors.push({ path: at('partials'), message: `must NOT have more than ${PART_LIMITS.partials} properties` });
  for (const n of names) tooLong(`partials.${n}`, parts.partials[n], PART_LIMITS.partial);
  const texts = [...PART_NAMES.map((p) => parts[p]), ...Object.values(parts.partials)];
  // UTF-16 code units first (cheap, never fewer than characters); characters only when those are over.
  if (texts.reduce((n, t) => n + t.length, 0) > PARTS_TOTAL_LIMIT) {
    const total = texts.reduce((n, t) => n + charCount(t), 0);
    if (total > PARTS_TOTAL_LIMIT) {
      errors.push({ path: all, message: `the template's parts would have ${total} characters in all (base, header, footer, css and partials together), over the limit of ${PARTS_TOTAL_LIMIT}` });
    }
  }
  return errors;
}

function partsOf(p: Schemas['DocumentTemplateParts']): TemplateParts {
  // OpenAPI 3.0 cannot say what a map's keys look like, so partial names are checked here.
  const badNames = Object.keys(p.partials ?? {}).filter((n) => !PARTIAL_NAME.test(n));
  if (badNames.length) throw validationFailed(badNames.map((n) => ({ path: `/requestBody/parts/partials/${n}`, message: `must match ${PARTIAL_NAME.source}` })));
  const parts = { base: p.base ?? '', header: p.header ?? '', footer: p.footer ?? '', css: p.css ?? '', partials: p.partials ?? {} };
  // The body's validator has checked each part's cap already, but not their total (JSON Schema cannot): the parts are
  // held to all the caps here (one check for both ways of saving parts, see writePart).
  const errors = partLimitErrors(parts, (part) => `/requestBody/parts/${part.replace(/^partials\./, 'partials/')}`, '/requestBody/parts');
  if (errors.length) throw validationFailed(errors);
  return parts;
}

/** Every part must parse before anything is saved. */
const checkParts = (parts: TemplateParts) => templateWork(() => workPool().run('checkTemplate', [parts], TEMPLATE_LIMITS.budgetMs));

/** One part's text (`base`, `css`, `partials.<name>` …); own properties only, a part name is never looked up on a prototype. */
export function readPart(parts: TemplateParts, part: string): string | undefined {
  const [holder, name] = part.startsWith('partials.') ? [parts.partials, part.slice('partials.'.length)] : [parts, part];
  const value: unknown = Object.hasOwn(holder, name) ? (holder as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/**
 * The parts with one part replaced (an empty text clears it, or removes a partial). A text/plain body is not checked
 * against the contract by the API, so a write is held here to the caps a whole template is (the written text named
 * `/requestBody`, another part by `/parts/<part>`; a write that makes all parts together too long, `/requestBody`
 * too): else one part at a time could grow a template past them, and
 * every save copies the whole template into a new version. A removal only shrinks a template, so it is never
 * refused (a template saved over the caps before they were checked here can still be brought back under them).
 */
function writePart(parts: TemplateParts, part: string, text: string): TemplateParts {
  let next: TemplateParts;
  if (!part.startsWith('partials.')) next = { ...parts, [part]: text };
  else {
    const name = part.slice('partials.'.length);
    const partials = { ...parts.partials };
    if (text === '') delete partials[name];
    else partials[name] = text;
    next = { ...parts, partials };
  }
  if (text !== '') {
    const errors = partLimitErrors(next, (p) => (p === part ? '/requestBody' : `/parts/${p}`), '/requestBody');
    if (errors.length) throw validationFailed(errors);
  }
  return next;
}

export async function createDocumentTemplate(deps: CommandDeps, c: Caller, input: Schemas['DocumentTemplateInput']): Promise<DocumentTemplate> {
  const parts = partsOf(input.parts);
  await checkParts(parts);
  const settings = settingsOf(input);
  return deps.sequelize.transaction(async (transaction) => {
    if (await DocumentTemplate.count({ where: { tenantId: c.tenantId, code: input.code }, transaction })) {
      throw new ApiError(409, 'ALREADY_EXISTS', `A document template with code "${input.code}" exists already`);
    }
    const fields = { name: input.name, description: input.description ?? null, settings, parts };
    const created = await DocumentTemplate.create({ id: randomUUID(), tenantId: c.tenantId, code: input.code, ...fields, version: 1 }, { transaction });
    await DocumentTemplateVersion.create({ templateId: created.id, version: 1, tenantId: c.tenantId, ...fields, createdBy: c.actor.id }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'documents.template.created', entityType: 'document_template', entityId: created.id, after: { code: input.code, version: 1 } }, transaction);
    return created;
  });
}

/** Whether two templates' parts hold the same texts (then a check of one stands for the other). */
function sameParts(a: TemplateParts, b: TemplateParts): boolean {
  const names = Object.keys(a.partials);
  return PART_NAMES.every((p) => a[p] === b[p]) && names.length === Object.keys(b.partials).length
    && names.every((n) => Object.hasOwn(b.partials, n) && a.partials[n] === b.partials[n]);
}

/** How often a save builds and checks its parts again when another save landed while they were being checked. */
const SAVE_RECHECKS = 1;

/**
 * Saves a new version of the template with what `change` makes of the current one. The parts are checked (on the work
 * pool, up to TEMPLATE_LIMITS.budgetMs once a thread is free) before the row is locked, against the template read
 * without a lock: checking inside the transaction held a pooled connection and the row meanwhile, so parallel saves of
 * slow parts drained the API's connections and every tenant got 503s. The short transaction that writes reads the row
 * again, locked, and checks `precondition` (If-Match) again; if another save landed meanwhile, `change` is made of the
 * new version, and when its parts differ from those checked they are checked again (SAVE_RECHECKS times at most, then
 * 409 INVALID_STATE: save again), so a part written beside another save never undoes it.
 */
async function saveVersion(deps: CommandDeps, c: Caller, id: string, change: (t: DocumentTemplate) => TemplateFields, precondition?: Precondition): Promise<DocumentTemplate> {
  let seen = await findInTenant(DocumentTemplate, c.tenantId, id, 'Document template');
  for (let rechecks = 0; ; rechecks++) {
    // A stale If-Match is refused before the check, as when it was made under the lock.
    precondition?.(seen.version);
    const basis = seen;
    const checked = change(basis);
    await checkParts(checked.parts);
    const outcome = await deps.sequelize.transaction(async (transaction): Promise<{ saved: DocumentTemplate } | { changed: DocumentTemplate }> => {
      const t = await findInTenant(DocumentTemplate, c.tenantId, id, 'Document template', { transaction, lock: transaction.LOCK.UPDATE });
      precondition?.(t.version);
      const next = t.version === basis.version ? checked : change(t);
      if (next !== checked && !sameParts(next.parts, checked.parts)) return { changed: t };
      const before = { version: t.version };
      Object.assign(t, next, { version: t.version + 1 });
      await t.save({ transaction });
      await DocumentTemplateVersion.create({ templateId: t.id, version: t.version, tenantId: c.tenantId, ...next, createdBy: c.actor.id }, { transaction });
      await recordAudit({ ...auditBy(c), action: 'documents.template.updated', entityType: 'document_template', entityId: t.id, before, after: { version: t.version } }, transaction);
      return { saved: t };
    });
    if ('saved' in outcome) return outcome.saved;
    if (rechecks >= SAVE_RECHECKS) throw new ApiError(409, 'INVALID_STATE', 'The template was saved again while this save was being checked; read it and save again');
    seen = outcome.changed;
  }
}

/** The whole template replaced: a new version. */
export function updateDocumentTemplate(deps: CommandDeps, c: Caller, id: string, input: TemplateBody, precondition?: Precondition): Promise<DocumentTemplate> {
  return saveVersion(deps, c, id, () => ({ name: input.name, description: input.description ?? null, settings: settingsOf(input), parts: partsOf(input.parts) }), precondition);
}

/**
 * One part deleted: a partial is removed (404 if the template has none of that name), `base`, `header`, `footer` or
 * `css` cleared; a new version either way, so the version before it still holds the text.
 */
export function deleteDocumentTemplatePart(deps: CommandDeps, c: Caller, id: string, part: string, precondition?: Precondition): Promise<DocumentTemplate> {
  return saveVersion(deps, c, id, (cur) => {
    if (readPart(cur.parts, part) === undefined) throw notFound(`Part ${part}`);
    return { name: cur.name, description: cur.description, settings: cur.settings, parts: writePart(cur.parts, part, '') };
  }, precondition);
}

/** One part replaced (an empty partial removed): a new version. */
export function putDocumentTemplatePart(deps: CommandDeps, c: Caller, id: string, part: string, text: string, precondition?: Precondition): Promise<DocumentTemplate> {
  return saveVersion(deps, c, id, (cur) => ({ name: cur.name, description: cur.description, settings: cur.settings, parts: writePart(cur.parts, part, text) }), precondition);
}

export async function deleteDocumentTemplate(deps: CommandDeps, c: Caller, id: string): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const t = await findInTenant(DocumentTemplate, c.tenantId, id, 'Document template', { transaction, lock: transaction.LOCK.UPDATE });
    const running = await Document.count({ where: { templateId: t.id, status: ['queued', 'rendering'] }, transaction });
    if (running) throw new ApiError(409, 'DEPENDENCY_EXISTS', `${running} document job(s) of this template are still running`, { count: running });
    await t.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'documents.template.deleted', entityType: 'document_template', entityId: t.id, before: { code: t.code, version: t.version } }, transaction);
  });
}

/**
 * Sample data rendered, nothing stored: HTML on the API's work pool, a PDF by the workers' Chromium pool (a
 * short workflow returns the bytes).
 */
export async function previewDocumentTemplate(deps: CommandDeps, c: Caller, id: string, input: Schemas['DocumentPreviewInput']): Promise<{ html: string } | { pdf: Buffer }> {
  const t = await findInTenant(DocumentTemplate, c.tenantId, id, 'Document template');
  if ((input.output ?? 'html') === 'html') {
    return { html: (await templateWork(() => workPool().run('renderTemplate', [t.parts, t.settings, input.data, `${t.id}:${t.version}`], TEMPLATE_LIMITS.budgetMs))).html };
  }
  try {
    const pdf = await deps.temporal.client.workflow.execute<typeof documentPreviewWorkflow>('documentPreviewWorkflow', {
      taskQueue: DOCUMENTS_TASK_QUEUE, workflowId: businessWorkflowId({ domain: DOCUMENT_PREVIEWS_DOMAIN, tenantId: c.tenantId, entityId: randomUUID() }),
      args: [{ tenantId: c.tenantId, templateId: t.id, version: t.version, data: input.data }], workflowExecutionTimeout: '1 minute',
    });
    return { pdf: Buffer.from(pdf, 'base64') };
  } catch (err) {
    const cause = err instanceof WorkflowFailedError && err.cause instanceof ActivityFailure ? err.cause.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === TEMPLATE_RENDER_ERROR) throw new ApiError(422, 'TEMPLATE_RENDER_ERROR', cause.message);
    // No documents worker answered within the minute (none running, or all busy).
    if (err instanceof WorkflowFailedError && err.cause instanceof TimeoutFailure) {
      throw serviceUnavailable('No documents worker rendered the preview within a minute; try again, or preview as HTML', 30);
    }
    throw err;
  }
}

// Documents and batches

/** The tenant's template with that code; a request naming another is refused (422). */
async function templateByCode(tenantId: string, code: string): Promise<DocumentTemplate> {
  const t = await DocumentTemplate.findOne({ where: { tenantId, code } });
  if (!t) throw new ApiError(422, 'UNKNOWN_TEMPLATE', `No document template with code "${code}"`);
  return t;
}

/** A caller's document job (its request audited with it). */
export async function requestDocumentFor(deps: CommandDeps, c: Caller, input: Schemas['DocumentInput']): Promise<Document> {
  const template = await templateByCode(c.tenantId, input.templateCode);
  const doc = await requestDocument(deps.temporal.client, {
    tenantId: c.tenantId, template, data: input.data, output: input.output ?? 'pdf', fileName: input.fileName,
    objectType: input.objectType, objectId: input.objectId, createdBy: c.actor.id, audit: auditBy(c),
  });
  deps.metrics.workflowStarts.inc({ workflow_type: 'documentWorkflow' });
  return doc;
}

/** Deletes a ready or failed document with its file (its bytes go just after, once nothing else uses them). */
export async function deleteDocument(deps: CommandDeps, c: Caller, id: string): Promise<void> {
  const doc = await findInTenant(Document, c.tenantId, id, 'Document');
  if (doc.status === 'queued' || doc.status === 'rendering') throw new ApiError(409, 'DOCUMENT_BUSY', `The document is ${doc.status}; delete it once it is ready or failed`);
  const file = doc.fileId ? await StoredFile.findOne({ where: { id: doc.fileId, tenantId: c.tenantId } }) : null;
  // The document, its file and the audit event go together, then the bytes if nothing else uses them.
  const removeDocument = async (transaction: Transaction) => {
    await doc.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'documents.document.deleted', entityType: 'document', entityId: doc.id, before: presentDocument(doc) }, transaction);
  };
  if (file) await deleteFile(deps.blobs, file, removeDocument);
  else await deps.sequelize.transaction(removeDocument);
}

/** One workflow for many documents: its items are rows (queued) from the start. */
export async function requestDocumentBatch(deps: CommandDeps, c: Caller, input: Schemas['DocumentBatchInput']): Promise<DocumentBatch> {
  const template = await templateByCode(c.tenantId, input.templateCode);
  const output: DocumentOutput = input.output ?? 'pdf';
  const id = randomUUID();
  const workflowId = businessWorkflowId({ domain: DOCUMENT_BATCHES_DOMAIN, tenantId: c.tenantId, entityId: id });
  const requested = { tenantId: c.tenantId, action: 'documents.batch.requested', entityType: 'document_batch', entityId: id } as const;
  const start: StartBusinessWorkflow<typeof documentBatchWorkflow> = {
    workflowType: 'documentBatchWorkflow', taskQueue: DOCUMENTS_TASK_QUEUE, domain: DOCUMENT_BATCHES_DOMAIN, tenantId: c.tenantId,
    entityType: 'document_batch', entityId: id, initialStatus: 'queued',
    args: [{ tenantId: c.tenantId, batchId: id, chunkSize: deps.config.documents.batchChunkSize, patches: DOCUMENT_PATCHES }],
  };
  const batch = await deps.sequelize.transaction(async (transaction) => {
    const created = await DocumentBatch.create({
      id, tenantId: c.tenantId, templateId: template.id, templateVersion: template.version, output, status: 'queued',
      total: input.items.length, workflowId, createdBy: c.actor.id,
    }, { transaction });
    // Items are rows from the start: the workflow pages through them, and each is downloadable by id.
    for (let i = 0; i < input.items.length; i += 1000) {
      await Document.bulkCreate(input.items.slice(i, i + 1000).map((item, j) => {
        const docId = randomUUID();
        return {
          id: docId, tenantId: c.tenantId, templateId: template.id, templateCode: template.code, templateVersion: template.version,
          batchId: id, batchIndex: i + j, output, fileName: item.fileName ?? `${template.code}-${i + j + 1}.${output}`,
          objectType: item.objectType ?? null, objectId: item.objectId ?? null, data: item.data, status: 'queued' as const, originKey: null,
          workflowId, createdBy: c.actor.id,
        };
      }), { transaction });
    }
    await recordAudit({ ...auditBy(c), ...requested, after: { templateCode: template.code, total: input.items.length }, workflowId }, transaction);
    await recordStartIntent(start, transaction);
    return created;
  });
  await startOrUndo(
    () => startBusinessWorkflow(deps.temporal.client, start),
    // Its queued items would never render and would block the template's deletion: take the batch back
    // (its items go with it, ON DELETE CASCADE), and its event with it.
    () => destroyWithAudit(batch, requested),
  );
  deps.metrics.workflowStarts.inc({ workflow_type: 'documentBatchWorkflow' });
  return batch;
}

/**
 * A stored file name as a ZIP entry's: never a path. openapi.yaml's DocumentFileName refuses what yazl would refuse (it
 * throws while the archive is built, so the whole download would fail), but a batch stored before it did may hold
 * such a name: separators and control characters become `_`, a drive prefix (`C:`) loses its colon, a name of only
 * dots (`..`) becomes underscores.
 */
function zipEntryName(name: string): string {
  const safe = name.replace(/[/\\\x00-\x1f]/g, '_').replace(/^([A-Za-z]):/, '$1_');
  return /^\.*$/.test(safe) ? '_'.repeat(Math.max(1, safe.length)) : safe;
}

/**
 * Names files inside a ZIP: safe (zipEntryName) and unique, so two items called "invoice.pdf" both survive (the second
 * as "invoice-2.pdf"). Each name remembers the suffix it reached: a batch of 10,000 items all named alike costs 10,000
 * tries, not 50 million (this runs on the API's thread, inside a download).
 */
export function uniqueNamer(): (stored: string) => string {
  const used = new Set<string>();
  const nextSuffix = new Map<string, number>();
  return (stored) => {
    const name = zipEntryName(stored);
    let candidate = name;
    let i = nextSuffix.get(name) ?? 2;
    while (used.has(candidate)) candidate = name.replace(/(\.[^.]*)?$/, (ext) => `-${i++}${ext}`);
    nextSuffix.set(name, i);
    used.add(candidate);
    return candidate;
  };
}

/** A finished batch's ready documents, in item order, each under a name unique in the batch. */
export async function batchFiles(batch: DocumentBatch): Promise<{ name: string; file: StoredFile }[]> {
  const docs = await Document.findAll({ attributes: ['fileName', 'fileId'], where: { batchId: batch.id, tenantId: batch.tenantId, status: 'ready' }, order: [['batchIndex', 'ASC']], raw: true });
  const files = new Map<string, StoredFile>();
  const ids = docs.map((d) => d.fileId!).filter(Boolean);
  for (let i = 0; i < ids.length; i += 1000) {
    for (const f of await StoredFile.findAll({ where: { tenantId: batch.tenantId, id: { [Op.in]: ids.slice(i, i + 1000) } } as WhereOptions<StoredFile> })) files.set(f.id, f);
  }
  const uniqueName = uniqueNamer();
  return docs.flatMap((d) => {
    const file = files.get(d.fileId!);
    return file ? [{ name: uniqueName(d.fileName), file }] : [];
  });
}
