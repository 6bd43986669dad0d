// Every migration's `down` undoes its `up`: on a database of its own, migrate up one at a time, then revert
// one at a time, each `down` leaving the schema exactly as it was before that `up`; then up again. An operator
// rolling back a release runs these `down`s on real data, so they are code that must work, not decoration.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { QueryTypes, Sequelize } from 'sequelize';
import { migrate, migrator } from '../../db/migrate';
import { PROJECT_ROOT } from '../../lib/paths';
import { privateDatabase } from '../helpers/private-database';

let own: Awaited<ReturnType<typeof privateDatabase>>;
let db: Sequelize;

beforeAll(async () => {
  own = await privateDatabase();
  db = own.sequelize;
});

afterAll(async () => { await own?.drop(); });

/** What the migrations build in `public`: tables and columns, indexes, constraints, functions, triggers, types. */
async function schema(): Promise<Record<string, string>> {
  const rows = async (sql: string) => {
    try {
      // One string per kind, so a failed comparison shows the lines that differ.
      return (await db.query<{ r: string }>(sql, { type: QueryTypes.SELECT })).map((x) => x.r).sort().join('\n');
    } catch (err) {
      throw new Error(`${(err as Error).message} in: ${sql}`);
    }
  };
  return {
    columns: await rows(`SELECT concat_ws(' ', table_name, column_name, data_type, is_nullable, column_default) AS r
      FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_migrations'`),
    indexes: await rows(`SELECT indexdef AS r FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'schema_migrations'`),
    constraints: await rows(`SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS r
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'schema_migrations'`),
    functions: await rows(`SELECT pg_get_functiondef(oid) AS r FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND prokind IN ('f', 'p')`),
    triggers: await rows(`SELECT pg_get_triggerdef(oid) AS r FROM pg_trigger WHERE NOT tgisinternal`),
    types: await rows(`SELECT typname || ' ' || typtype::text AS r FROM pg_type
      WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd', 'c') AND typrelid = 0`),
    views: await rows(`SELECT viewname || ' ' || definition AS r FROM pg_views WHERE schemaname = 'public'`),
  };
}

test('each migration\'s down leaves the schema exactly as it was before its up', async () => {
  const files = fs.readdirSync(path.join(PROJECT_ROOT, 'db', 'migrations')).map((f) => path.basename(f, '.ts')).sort();
  // Up one at a time, keeping the schema before each migration.
  const before: Record<string, string>[] = [];
  for (const name of files) {
    before.push(await schema());
    await expect(migrator(db).up({ step: 1 }).then((done) => done.map((m) => m.name))).resolves.toEqual([name]);
  }
  const built = await schema();
  expect(built.columns).toMatch(/^campaigns progress_count /m); // 0027 is in it
  expect(built.functions).toMatch(/docket_send_acquire[^]*p_in_flight/); // and 0028

  // Down one at a time, newest first: each must restore what its up started from.
  for (let i = files.length - 1; i >= 0; i--) {
    await expect(migrator(db).down({ step: 1 }).then((done) => done.map((m) => m.name))).resolves.toEqual([files[i]]);
    const now = await schema();
    try {
      expect(now).toEqual(before[i]);
    } catch (err) {
      (err as Error).message = `after ${files[i]} down:\n${(err as Error).message}`;
      throw err;
    }
  }
  expect(await migrator(db).executed()).toEqual([]);
  expect(before[0]).toEqual({ columns: '', indexes: '', constraints: '', functions: '', triggers: '', types: '', views: '' });

  // And up again (as the API does on start) builds the same schema as the first time.
  await migrate(db);
  expect(await schema()).toEqual(built);
});

test('npm run migrate -- --revert: 0025 refuses, changing nothing, while a flow without a template exists', async () => {
  await migrate(db);
  const tenantId = randomUUID();
  await db.query(`INSERT INTO tenants (id, name, slug, created_at, updated_at) VALUES ('${tenantId}', 'Rollback', 'rollback', now(), now())`);
  await db.query(`INSERT INTO approval_flows (id, tenant_id, object_type, object_id, title, requester_id, status, state, workflow_id, created_at, updated_at)
    VALUES ('${randomUUID()}', '${tenantId}', 'expense', 'e-1', 'Needs no approval', '${randomUUID()}', 'approved', '{}', 'approvals:x', now(), now())`);
  const refused = await migrateCli('--revert', '0025_tenant_defaults_not_required');
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/1 approval flow\(s\) have no template/);
  // 0026–0028 were reverted; 0025 was not, and its table and nullable columns are still there.
  const status = await migrateCli('--status');
  expect(status.stdout).toMatch(/applied {2}0025_tenant_defaults_not_required\npending {2}0026_credential_change_notify\n/);
  expect((await schema()).columns).toMatch(/^approval_flows template_id uuid YES$/m);
  expect((await schema()).columns).toMatch(/^tenant_notification_settings default_locale /m);

  await db.query('DELETE FROM approval_flows WHERE template_id IS NULL');
  const reverted = await migrateCli('--revert', '0025_tenant_defaults_not_required');
  expect(reverted).toMatchObject({ code: 0, stdout: 'reverted: 0025_tenant_defaults_not_required\n' });
  expect((await schema()).columns).toMatch(/^approval_flows template_id uuid NO$/m);
  // Unknown names and bad arguments change nothing.
  expect(await migrateCli('--revert', '0099_nothing')).toMatchObject({ code: 1, stderr: expect.stringMatching(/0099_nothing is not applied/) });
  expect(await migrateCli('--revert')).toMatchObject({ code: 2, stderr: expect.stringMatching(/usage/) });
  expect((await migrator(db).executed()).pop()?.name).toBe('0024_reminder_webhook_endpoints');

  expect(await migrateCli()).toMatchObject({ code: 0, stdout: 'migrations applied\n' });
  expect((await migrator(db).pending())).toEqual([]);
});

/** `npm run migrate` (scripts/migrate.ts) against this test's database. */
function migrateCli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'scripts', 'migrate.ts'), ...args],
      { cwd: PROJECT_ROOT, env: { ...process.env, DATABASE_URL: own.url }, timeout: 60_000 },
      (err, stdout, stderr) => (err && typeof err.code !== 'number' ? reject(err) : resolve({ code: err ? (err.code as number) : 0, stdout, stderr })));
  });
}
