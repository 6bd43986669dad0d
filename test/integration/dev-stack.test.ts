// What a newcomer meets first: `npm start` as root from a private folder, and the tenant bootstrap CLI.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Tenant } from '../../db';
import { createSequelize } from '../../db';
import { DevStackError, folderBlocking, freePort, startEmbeddedPostgres } from '../../scripts/stack';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
let scratch: string;

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-devstack-'));
  fs.chmodSync(scratch, 0o755);
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe('a folder other users cannot enter', () => {
  it('is found on the way to a path, for a user who is neither its owner nor in its group', () => {
    const privateDir = path.join(scratch, 'private');
    fs.mkdirSync(path.join(privateDir, 'clone', 'node_modules'), { recursive: true });
    fs.chmodSync(privateDir, 0o700);
    const owner = fs.statSync(privateDir).uid;
    const stranger = { uid: owner + 12345, gids: [54321] };
    expect(folderBlocking(path.join(privateDir, 'clone', 'node_modules', 'not-yet'), stranger)).toBe(privateDir);
    expect(folderBlocking(path.join(privateDir, 'clone'), { uid: owner, gids: [] })).toBeUndefined();
    expect(folderBlocking(scratch, stranger)).toBeUndefined();
  });

  (process.getuid?.() === 0 ? it : it.skip)('stops Postgres\'s start, as root, with one sentence naming it instead of spawn … EACCES', async () => {
    const privateDir = path.join(scratch, 'root-only');
    fs.mkdirSync(privateDir, { mode: 0o700 });
    const err = await startEmbeddedPostgres({ dir: path.join(privateDir, 'postgres'), port: await freePort(), persistent: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DevStackError);
    expect((err as Error).message).toContain(`who cannot enter ${privateDir} (mode 0700)`);
    expect((err as Error).message).toContain('DATABASE_URL');
    expect(fs.existsSync(path.join(privateDir, 'postgres'))).toBe(false);
  });
});

it('npm run bootstrap-tenant needs only DATABASE_URL (no TEMPORAL_ADDRESS)', async () => {
  const env = { ...process.env };
  delete env.TEMPORAL_ADDRESS;
  const slug = `boot-${Date.now()}`;
  const { stdout } = await run(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['scripts/bootstrap-tenant.ts', '--name', 'Boot', '--slug', slug, '--admin-email', 'ops@boot.example'], { cwd: ROOT, env });
  const out = JSON.parse(stdout) as { tenantId: string; apiKey: string };
  expect(out.apiKey).toMatch(/^dk_/);
  const sequelize = createSequelize(process.env.DATABASE_URL!);
  try {
    expect((await Tenant.findByPk(out.tenantId))?.slug).toBe(slug);
  } finally {
    await sequelize.close();
  }
});
