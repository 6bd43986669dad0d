// The contacts files the imports benchmarks read: a subscribers export of ~100 bytes a row (CSV or XLSX),
// generated on the fly so no fixture of 100 MB is ever committed, and the mapping that imports it.
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import ExcelJS from 'exceljs';
import type { ClientBase } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ColumnMapping } from '../../domains/imports/types';

const PLANS = ['free', 'pro', 'team', 'enterprise'];
const CITIES = ['Paris', 'Berlin', 'São Paulo', 'Zürich', 'New York', 'Tokyo', 'Lagos', 'Lima'];
export const CONTACT_HEADER = ['email', 'first_name', 'last_name', 'company', 'city', 'plan', 'signup_date'];

/** Row i's cells; `variant` changes every last name (a file where every row is an update). Emails are unique. */
function contact(i: number, variant: string): string[] {
  const date = `2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`;
  return [`person.${i}.${(i * 7919) % 100_003}@example${i % 97}.com`, `Firstname${i % 1000}`, `Lastname${i}${variant}`, `Company ${i % 5000} Ltd`, CITIES[i % 8], PLANS[i % 4], date];
}

/** Writes `rows` contacts as CSV (no cell needs quoting); returns the file's size in bytes. */
export async function writeContactsCsv(file: string, rows: number, variant = ''): Promise<number> {
  const out = fs.createWriteStream(file);
  out.write(`${CONTACT_HEADER.join(',')}\n`);
  for (let i = 0; i < rows;) {
    let chunk = '';
    for (let k = 0; k < 2000 && i < rows; k++, i++) chunk += `${contact(i, variant).join(',')}\n`;
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
  return fs.statSync(file).size;
}

/** Writes `rows` contacts as an XLSX workbook (one sheet, "Contacts"), streamed; returns its size in bytes. */
export async function writeContactsXlsx(file: string, rows: number): Promise<number> {
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ filename: file, useSharedStrings: true });
  const ws = wb.addWorksheet('Contacts');
  ws.addRow(CONTACT_HEADER).commit();
  for (let i = 0; i < rows; i++) ws.addRow(contact(i, '')).commit();
  ws.commit();
  await wb.commit();
  return fs.statSync(file).size;
}

/** The column mapping of a contacts file onto the subscribers target. */
export const CONTACT_MAPPING: ColumnMapping[] = [
  { source: 'email', field: 'email' },
  { source: 'first_name', field: 'name' },
  { source: 'last_name', field: 'attributes.last_name' },
  { source: 'company', field: 'attributes.company' },
  { source: 'city', field: 'attributes.city' },
  { source: 'plan', field: 'attributes.plan' },
  { source: 'signup_date', field: 'attributes.signup_date', transforms: [{ op: 'date', format: 'yyyy-MM-dd' }] },
];

/**
 * The imports benchmarks' bare path: `COPY` of a contacts CSV into a fresh table shaped like it, with the unique
 * index Docket's subscribers have, and no Docket code. Returns the seconds the COPY took (after a CHECKPOINT, so
 * it does not pay for earlier writes); the table is dropped after.
 */
export async function bareContactsCopy(db: ClientBase, table: string, tenantId: string, file: string): Promise<number> {
  await db.query(`CREATE TABLE ${table} (tenant_id uuid NOT NULL DEFAULT '${tenantId}', ${CONTACT_HEADER.map((h) => `${h} text${h === 'email' ? ' COLLATE "C" NOT NULL' : ''}`).join(', ')})`);
  await db.query(`CREATE UNIQUE INDEX ON ${table} (tenant_id, email)`);
  await db.query('CHECKPOINT');
  const t0 = performance.now();
  await pipeline(fs.createReadStream(file, { highWaterMark: 256 * 1024 }), db.query(copyFrom(`COPY ${table} (${CONTACT_HEADER.join(', ')}) FROM STDIN WITH (FORMAT csv, HEADER true)`)));
  const seconds = (performance.now() - t0) / 1000;
  await db.query(`DROP TABLE ${table}`);
  return seconds;
}
