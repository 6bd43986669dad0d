// Throughput check of the import pipeline (not a timed test; run it on a quiet machine and read the load it prints):
//
//   npx tsx bench/experiments/imports-throughput.ts [rows=1000000] [--xlsx=100000] [--concurrency=2]
//
// Against a throwaway embedded Postgres (or DATABASE_URL), in this process (so its peak RSS is the pipeline's):
//   1. the bare path: COPY of the generated CSV into a same-shaped table with the same unique index, no Docket code;
//   2. Docket's insert run into an empty tenant: read → validate → COPY staging → checks → merge, phase by phase;
//   3. the same file again as `merge` (every row unchanged), then a file where every row changed (every row updated);
//   4. staging: one unlogged table per import vs one shared unlogged table keyed by import id;
//   5. optionally an XLSX of --xlsx rows into another empty tenant.
// Peak RSS is this process's VmHWM after the Docket runs; run it at 100000 and 1000000 rows to compare the two.
// BENCH_INSERT_ONLY=1 stops after the insert run (1. and 2.); BENCH_SQL runs one statement after migrating (e.g. an
// index setting to try); BENCH_DROP_GIN=1 drops the attributes index; BENCH_REVERT=1 reverts the insert run (the
// domain's one transaction, as the revert workflow's activity runs it) and stops.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { createSequelize, ImportRun, Tenant } from '../../db';
import { migrate } from '../../db/migrate';
import { finishImport, mergeImport, stageImport, stagingTable } from '../../domains/imports/pipeline';
import { withClient } from '../../domains/imports/pg';
import { revertImport } from '../../domains/imports/revert';
import type { MergeStrategy } from '../../domains/imports/types';
import { freePort, startEmbeddedPostgres } from '../../scripts/stack';
import { bareContactsCopy, CONTACT_MAPPING as MAPPING, writeContactsCsv as writeCsv, writeContactsXlsx } from '../lib/contacts';

const args = process.argv.slice(2);
const ROWS = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const XLSX_ROWS = Number(args.find((a) => a.startsWith('--xlsx='))?.slice(7) ?? 0);
const CONCURRENCY = Number(args.find((a) => a.startsWith('--concurrency='))?.slice(14) ?? 2);

const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
const peakRssMb = () => Number(/^VmHWM:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const secs = (t0: number) => Number(((performance.now() - t0) / 1000).toFixed(2));
const results: Record<string, unknown> = { rows: ROWS, machine: { cpus: os.cpus().length, node: process.version }, loadAtStart: load() };
const say = (k: string, v: unknown) => { results[k] = v; console.log(k, JSON.stringify(v)); };

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-imports-bench-'));
  fs.chmodSync(dir, 0o755);
  const pg = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: await freePort(), persistent: false });
  const sequelize = createSequelize(process.env.DATABASE_URL ?? pg!.url, { poolMax: 4 });
  try {
    await migrate(sequelize);
    if (process.env.BENCH_DROP_GIN) await sequelize.query('DROP INDEX subscribers_attributes');
    if (process.env.BENCH_SQL) await sequelize.query(process.env.BENCH_SQL);
    const csv = path.join(dir, 'subscribers.csv');
    const size = await writeCsv(csv, ROWS);
    say('file', { bytes: size, mb: Number((size / 1e6).toFixed(1)) });
    const source = (file: string) => ({ open: (start = 0) => fs.createReadStream(file, { start, highWaterMark: 256 * 1024 }) });
    const newTenant = async () => {
      const id = randomUUID();
      return Tenant.create({ id, name: 'Bench', slug: `bench-${id.slice(0, 8)}` });
    };

    // 1. Bare path: the same file, COPYed into a table shaped like it, with the same unique index.
    await withClient(sequelize, async (db) => {
      const tenant = await newTenant();
      const seconds = Number((await bareContactsCopy(db, 'bare_subscribers', tenant.id, csv)).toFixed(2));
      say('bare', { seconds, rowsPerSecond: Math.round(ROWS / seconds), load: load() });
    });

    async function docketRun(tenant: Tenant, file: string, strategy: MergeStrategy, label: string) {
      await withClient(sequelize, (db) => db.query('CHECKPOINT'));
      const id = randomUUID();
      await ImportRun.create({
        tenantId: tenant.id, id, target: 'subscribers', fileId: randomUUID(), fileSha256: '0'.repeat(64), fileName: path.basename(file), fileSize: fs.statSync(file).size,
        templateId: null, templateVersion: null, source: {}, columns: MAPPING, keyField: 'email', mergeStrategy: strategy, workflowId: `imports:${tenant.id}:${id}`, createdBy: 'bench',
      });
      const ids = { tenantId: tenant.id, importId: id };
      const t0 = performance.now();
      let beats = 0;
      const staged = await stageImport(sequelize, ids, { source: source(file), progress: () => { beats++; } });
      const tStaged = secs(t0);
      const t1 = performance.now();
      const counts = await mergeImport(sequelize, ids, { concurrency: CONCURRENCY });
      const tMerged = secs(t1);
      await finishImport(sequelize, ids);
      const total = secs(t0);
      say(label, { seconds: total, staging: tStaged, stagingParts: staged.timings, merge: tMerged, rowsPerSecond: Math.round(ROWS / total), counts, heartbeats: beats, staged: staged.valid, peakRssMb: Math.round(peakRssMb()), load: load() });
      return { total, id };
    }

    // 2. and 3.
    const tenant = await newTenant();
    const insert = await docketRun(tenant, csv, 'merge', 'docketInsert');
    const bare = results.bare as { seconds: number };
    say('ratio', { docketThroughputVsBare: Number((bare.seconds / insert.total).toFixed(2)), target: 0.5 });
    if (process.env.BENCH_REVERT) {
      const t0 = performance.now();
      const r = await revertImport(sequelize, { tenantId: tenant.id, importId: insert.id }, { revertedBy: null, caller: { missing: () => [] } });
      say('revertInsert', { seconds: secs(t0), ...r, load: load() });
      return;
    }
    if (process.env.BENCH_INSERT_ONLY) return;
    await docketRun(tenant, csv, 'merge', 'docketMergeUnchanged');
    const changed = path.join(dir, 'changed.csv');
    await writeCsv(changed, ROWS, 'x');
    await docketRun(tenant, changed, 'merge', 'docketMergeAllUpdated');

    // 4. Staging layouts, on the staged rows of a fresh run: per-import table vs one shared table keyed by import id.
    await withClient(sequelize, async (db) => {
      const t = await newTenant();
      const id = randomUUID();
      await ImportRun.create({ tenantId: t.id, id, target: 'subscribers', fileId: randomUUID(), fileSha256: '0'.repeat(64), fileName: 'x', fileSize: 0, templateId: null, templateVersion: null, source: {}, columns: MAPPING, keyField: 'email', mergeStrategy: 'merge', workflowId: `imports:${t.id}:${id}`, createdBy: 'bench' });
      await stageImport(sequelize, { tenantId: t.id, importId: id }, { source: source(csv) });
      const dump = path.join(dir, 'staged.copy');
      await pipeline(db.query(copyTo(`COPY (SELECT row_no, id, key, f_name, attributes FROM ${stagingTable(id)} ORDER BY row_no) TO STDOUT`)), fs.createWriteStream(dump));
      const copyIn = async (table: string, prefix: string) => {
        const t0 = performance.now();
        await pipeline(fs.createReadStream(dump, { highWaterMark: 256 * 1024 }), db.query(copyFrom(`COPY ${table} (${prefix}row_no, id, key, f_name, attributes) FROM STDIN`)));
        return secs(t0);
      };
      const cols = 'row_no integer NOT NULL, id uuid NOT NULL, key text COLLATE "C" NOT NULL, f_name text, attributes jsonb';
      await db.query(`CREATE UNLOGGED TABLE stage_per_import (${cols})`);
      const perCopy = await copyIn('stage_per_import', '');
      let t0 = performance.now();
      await db.query('CREATE INDEX ON stage_per_import (row_no)');
      const perIndex = secs(t0);
      t0 = performance.now();
      await db.query('DROP TABLE stage_per_import');
      const perDrop = secs(t0);
      // The shared table needs import_id in every row and an index to find one import's rows (and to delete them).
      const other = randomUUID();
      await db.query(`CREATE UNLOGGED TABLE stage_shared (import_id uuid NOT NULL DEFAULT '${other}', ${cols}, PRIMARY KEY (import_id, row_no))`);
      await copyIn('stage_shared', ''); // another import's rows are there already
      await db.query(`ALTER TABLE stage_shared ALTER import_id SET DEFAULT '${id}'`);
      const sharedCopy = await copyIn('stage_shared', '');
      t0 = performance.now();
      await db.query('DELETE FROM stage_shared WHERE import_id = $1', [id]);
      const sharedDelete = secs(t0);
      await db.query('DROP TABLE stage_shared');
      await finishImport(sequelize, { tenantId: t.id, importId: id });
      say('stagingLayouts', {
        perImportTable: { copy: perCopy, indexAfter: perIndex, drop: perDrop, total: Number((perCopy + perIndex + perDrop).toFixed(2)) },
        sharedTable: { copy: sharedCopy, delete: sharedDelete, total: Number((sharedCopy + sharedDelete).toFixed(2)) },
        load: load(),
      });
    });

    // 5. XLSX
    if (XLSX_ROWS) {
      const xlsx = path.join(dir, 'subscribers.xlsx');
      await writeContactsXlsx(xlsx, XLSX_ROWS);
      const t = await newTenant();
      const { total } = await docketRun(t, xlsx, 'merge', 'docketXlsx');
      say('xlsx', { rows: XLSX_ROWS, bytes: fs.statSync(xlsx).size, seconds: total, target: 20 });
    }
    say('peakRssMb', Math.round(peakRssMb()));
    say('loadAtEnd', load());
    console.log(JSON.stringify(results, null, 2));
  } finally {
    await sequelize.close();
    await pg?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((err) => { console.error(err); process.exit(1); });
