import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSequelize, ImportRun, Tenant } from '../db';
import { migrate } from '../db/migrate';
import { stageImport, loadRun, mergeContext } from '../domains/imports/staging';
import { withClient } from '../domains/imports/pg';
import { bindMapping } from '../domains/imports/mapping/compile';
import { importTarget } from '../domains/imports/targets';
import { freePort, startEmbeddedPostgres } from '../scripts/stack';
import { CONTACT_MAPPING, writeContactsCsv } from '../bench/lib/contacts';

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'explain-'));
  fs.chmodSync(dir, 0o755);
  const pg = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: await freePort(), persistent: false });
  const sequelize = createSequelize(pg.url, { poolMax: 4 });
  try {
    await migrate(sequelize);
    const csv = path.join(dir, 'c.csv');
    await writeContactsCsv(csv, 100_000);
    const tenant = await Tenant.create({ id: randomUUID(), name: 'B', slug: 'b' });
    const id = randomUUID();
    await ImportRun.create({ tenantId: tenant.id, id, target: 'subscribers', fileId: randomUUID(), fileSha256: '0'.repeat(64), fileName: 'c.csv', fileSize: 1, templateId: null, templateVersion: null, source: {}, columns: CONTACT_MAPPING, keyField: 'email', mergeStrategy: process.env.STRAT ?? 'merge', workflowId: `imports:${tenant.id}:${id}`, createdBy: 'x' });
    await stageImport(sequelize, { tenantId: tenant.id, importId: id }, { source: { open: (start = 0) => fs.createReadStream(csv, { start }) } });
    if (process.env.DROPFK) await sequelize.query('ALTER TABLE subscribers DROP CONSTRAINT subscribers_tenant_id_fkey');
    if (process.env.DROPGIN) await sequelize.query('DROP INDEX subscribers_attributes');
    await withClient(sequelize, async (db) => {
      const run = await loadRun(db, tenant.id, id);
      const target = importTarget('subscribers');
      const ctx = mergeContext(run, bindMapping(target, run.columns, run.detected!.header));
      const proxy = new Proxy(db, { get(t, p) {
        if (p !== 'query') return (t as any)[p]?.bind ? (t as any)[p].bind(t) : (t as any)[p];
        return async (sql: string, params: unknown[]) => {
          const t0 = performance.now();
          if (typeof sql === 'string' && /^\s*WITH/.test(sql)) {
            const r = await t.query('EXPLAIN (ANALYZE, BUFFERS, TIMING) ' + sql, params);
            console.log(r.rows.map((x: any) => x['QUERY PLAN']).join('\n'));
            return { rows: [{ rows: 1, existing: 0, created: 1, updated: 0 }], rowCount: 0 };
          }
          const r = await t.query(sql, params);
          console.log('---', (performance.now() - t0).toFixed(1), 'ms', String(sql).slice(0, 120).replace(/\s+/g, ' '));
          return r;
        };
      } });
      const { rows: bs } = await db.query(`SELECT key FROM (SELECT key, row_number() OVER (ORDER BY key) AS n FROM ${ctx.stage}) k WHERE (n - 1) % 25000 = 0 ORDER BY key`); const rg = (i: number) => ({ from: bs[i].key, to: bs[i + 1]?.key ?? null });
      if (process.env.UNCHANGED) for (let i = 0; i < bs.length; i++) await target.mergeChunk(db, ctx, rg(i));
      if (process.env.ANALYZE) await db.query('ANALYZE subscribers');
      await db.query('BEGIN');
      const t0 = performance.now();
      await target.mergeChunk(proxy as any, ctx, rg(1));
      console.log('chunk total', (performance.now() - t0).toFixed(0), 'ms');
      await db.query('ROLLBACK');
    });
  } finally {
    await sequelize.close();
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
