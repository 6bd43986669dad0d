// Import runs for tests: a file on disk as the byte source, a run row, and the pipeline driven end to end.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import ExcelJS from 'exceljs';
import unzipper, { type Entry } from 'unzipper';
import yazl from 'yazl';
import type { Sequelize } from 'sequelize';
import { ImportRun, Subscriber, SubscriberList, Tenant } from '../../db';
import { finishImport, mergeImport, stageImport } from '../../domains/imports/pipeline';
import type { ByteSource } from '../../domains/imports/source';
import type { StageOptions } from '../../domains/imports/staging';
import type { PermissionCheck } from '../../domains/imports/targets/types';
import { ImportError } from '../../domains/imports/pipeline';
import type { ColumnMapping, MergeStrategy, RowErrorPolicy, SourceOptions } from '../../domains/imports/types';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-imports-'));

/** Bytes (or text, written as UTF-8) in a temp file, read as a ByteSource that can start at a byte. */
export function fileSource(content: Buffer | string): ByteSource & { path: string; size: number } {
  const file = path.join(dir, `${randomUUID()}.bin`);
  fs.writeFileSync(file, content);
  return { path: file, size: fs.statSync(file).size, open: (start = 0) => fs.createReadStream(file, { start, highWaterMark: 16 * 1024 }) };
}

export interface RunSpec {
  target?: string;
  columns: ColumnMapping[];
  strategy?: MergeStrategy;
  dryRun?: boolean;
  onRowError?: RowErrorPolicy;
  source?: SourceOptions;
}

export async function createRun(tenant: Tenant, spec: RunSpec, size = 0): Promise<ImportRun> {
  const id = randomUUID();
  return ImportRun.create({
    tenantId: tenant.id, id, target: spec.target ?? 'subscribers', fileId: randomUUID(), fileSha256: '0'.repeat(64), fileName: 'test.csv',
    fileSize: size, templateId: null, templateVersion: null, source: spec.source ?? {}, columns: spec.columns, keyField: 'email',
    mergeStrategy: spec.strategy ?? 'merge', dryRun: spec.dryRun ?? false, onRowError: spec.onRowError ?? 'skip',
    workflowId: `imports:${tenant.id}:${id}`, createdBy: 'test',
  });
}

/** Stage, merge and finish, as the import workflow will. */
export async function runImport(sequelize: Sequelize, tenant: Tenant, content: Buffer | string | ByteSource, spec: RunSpec, opts: Partial<StageOptions> & { caller?: PermissionCheck } = {}) {
  const source = typeof content === 'object' && 'open' in content ? content : fileSource(content);
  const run = await createRun(tenant, spec);
  const ids = { tenantId: tenant.id, importId: run.id };
  const staged = await stageImport(sequelize, ids, { source, ...opts });
  const counts = await mergeImport(sequelize, ids, { caller: opts.caller, concurrency: 2, chunkRows: 3 });
  await finishImport(sequelize, ids);
  return { run, staged, counts };
}

export const subscribersOf = async (tenant: Tenant) =>
  (await Subscriber.findAll({ where: { tenantId: tenant.id }, order: [['email', 'ASC']] })).map((s) => ({ email: s.email, name: s.name, status: s.status, attributes: s.attributes, importId: s.importId }));

export async function buildList(tenant: Tenant, name: string): Promise<SubscriberList> {
  return SubscriberList.create({ tenantId: tenant.id, id: randomUUID(), name });
}

/** An XLSX workbook with these sheets (name → rows, the first its header). */
export async function xlsx(sheets: Record<string, unknown[][]>): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  for (const [name, rows] of Object.entries(sheets)) {
    const ws = wb.addWorksheet(name);
    for (const r of rows) ws.addRow(r);
  }
  return Buffer.from(await wb.xlsx.writeBuffer());
}

/**
 * The same workbook with its entries in another zip order: `first` (in that order), then the rest as they were.
 * Excel and exceljs write the sheets before the shared strings; a reader must take either order.
 */
export async function rezip(workbook: Buffer, first: string[]): Promise<Buffer> {
  const entries = await zipEntries(workbook);
  const zip = new yazl.ZipFile();
  for (const name of [...first, ...[...entries.keys()].filter((n) => !first.includes(n))]) zip.addBuffer(entries.get(name)!, name);
  zip.end();
  const out: Buffer[] = [];
  for await (const c of zip.outputStream) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** A zip's files in the order they are stored. */
export async function zipEntries(zip: Buffer): Promise<Map<string, Buffer>> {
  const entries = new Map<string, Buffer>();
  for await (const entry of Readable.from([zip]).pipe(unzipper.Parse({ forceStream: true })) as AsyncIterable<Entry>) {
    if (entry.type !== 'File') {
      entry.autodrain();
      continue;
    }
    const parts: Buffer[] = [];
    for await (const c of entry) parts.push(c as Buffer);
    entries.set(entry.path, Buffer.concat(parts));
  }
  return entries;
}

/** The ImportError `p` rejects with (any other outcome fails the test). */
export async function importErrorOf(p: Promise<unknown>): Promise<ImportError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ImportError) return err;
    throw err;
  }
  throw new Error('no ImportError');
}
