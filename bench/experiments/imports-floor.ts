// The floor under issue #15's insert ratio (not a timed test; run it on a quiet machine):
//
//   npx tsx bench/experiments/imports-floor.ts [rows=1000000]
//
// The target asks Docket's 1M-row insert run for ≥ 0.5 of the throughput of the bare path: `COPY` of the contacts
// file into a table of the file's shape with one unique index. This measures, in one run against a throwaway
// embedded Postgres, what no import pipeline can beat however it parses, validates or merges: `COPY` of the same
// rows, already in the subscribers table's shape (so no JavaScript, no staging, no merge, no duplicate check), straight
// into Docket's `subscribers` table with the indexes its features read — the unique email per tenant, the primary
// key, the attribute filter's GIN index, the status filter's partial index. If that alone is slower than twice the
// bare path, the ratio cannot be met on this machine by any change to the pipeline; the rest of the import's cost
// (parsing, validation, the duplicate check, the import id on every row, revertability) comes on top.
// Also: the same COPY with the GIN index dropped, to show what that index costs.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { createSequelize, Tenant } from '../../db';
import { migrate } from '../../db/migrate';
import { withClient } from '../../domains/imports/pg';
import { freePort, startEmbeddedPostgres } from '../../scripts/stack';
import { bareContactsCopy, CONTACT_HEADER, writeContactsCsv } from '../lib/contacts';

const ROWS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
const secs = (t0: number) => Number(((performance.now() - t0) / 1000).toFixed(2));
const results: Record<string, unknown> = { rows: ROWS, machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version } };
const say = (k: string, v: unknown) => { results[k] = v; console.log(k, JSON.stringify(v)); };

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-imports-floor-'));
  fs.chmodSync(dir, 0o755);
  const pg = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port: await freePort(), persistent: false });
  const sequelize = createSequelize(pg.url, { poolMax: 2 });
  try {
    await migrate(sequelize);
    const csv = path.join(dir, 'contacts.csv');
    say('file', { bytes: await writeContactsCsv(csv, ROWS) });
    const tenant = async () => (await Tenant.create({ id: randomUUID(), name: 'Floor', slug: `floor-${randomUUID().slice(0, 8)}` })).id;

    await withClient(sequelize, async (db) => {
      // The same rows in the subscribers table's shape, written once (untimed): name from first and last name,
      // the other columns as attributes, as the benchmark's mapping imports them.
      const shaped = path.join(dir, 'subscribers.csv');
      await db.query(`CREATE TABLE contacts (${CONTACT_HEADER.map((h) => `${h} text`).join(', ')})`);
      await pipeline(fs.createReadStream(csv), db.query(copyFrom(`COPY contacts FROM STDIN WITH (FORMAT csv, HEADER true)`)));
      await pipeline(db.query(copyTo(`COPY (SELECT uuidv7(), email, first_name || ' ' || last_name,
          jsonb_build_object('company', company, 'city', city, 'plan', plan, 'signup_date', signup_date), uuidv7() FROM contacts)
        TO STDOUT WITH (FORMAT csv)`)), fs.createWriteStream(shaped));
      await db.query('DROP TABLE contacts');
      // COPY into subscribers for a new tenant (its id as the column default: COPY takes no constant column).
      // The backend's own CPU (utime + stime, /proc/<pid>/stat), to tell its work from waiting on the disk.
      const { rows: [{ pid }] } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const cpuSeconds = () => {
        const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
        return (Number(fields[11]) + Number(fields[12])) / 100; // fields 14 and 15 of stat, in clock ticks (100 a second)
      };
      const copyShaped = async () => {
        const t = await tenant();
        await db.query(`ALTER TABLE subscribers ALTER tenant_id SET DEFAULT '${t}'`);
        await db.query('CHECKPOINT');
        const cpu0 = cpuSeconds();
        const t0 = performance.now();
        await pipeline(fs.createReadStream(shaped, { highWaterMark: 256 * 1024 }),
          db.query(copyFrom('COPY subscribers (id, email, name, attributes, import_id) FROM STDIN WITH (FORMAT csv)')));
        const seconds = secs(t0);
        const cpu = Number((cpuSeconds() - cpu0).toFixed(2));
        await db.query('ALTER TABLE subscribers ALTER tenant_id DROP DEFAULT');
        return { seconds, backendCpuSeconds: cpu };
      };

      const bare1 = Number((await bareContactsCopy(db, 'bare_subscribers', await tenant(), csv)).toFixed(2));
      const floor = await copyShaped();
      await db.query('DROP INDEX subscribers_attributes');
      const floorNoGin = await copyShaped();
      const bare2 = Number((await bareContactsCopy(db, 'bare_subscribers', await tenant(), csv)).toFixed(2));
      const bare = Number(((bare1 + bare2) / 2).toFixed(2));
      say('bare', { seconds: [bare1, bare2], mean: bare });
      say('floor', {
        copyIntoSubscribers: floor, copyIntoSubscribersWithoutGin: floorNoGin,
        'best ratio any pipeline could reach: bare / floor': Number((bare / floor.seconds).toFixed(3)),
        'the same without the attributes index': Number((bare / floorNoGin.seconds).toFixed(3)),
        target: 0.5,
      });
    });
    say('load', load());
  } finally {
    await sequelize.close();
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((err) => { console.error(err); process.exit(1); });
