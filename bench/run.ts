// `npm run bench [-- <suite> …]`: stands up a throwaway stack (embedded Postgres, Temporal dev server,
// migrations, one tenant), runs the selected suites (all when none is named), prints a table per
// suite, writes a new bench/results/<suite>-<time>-<revision>….json per suite and tears the stack down,
// also on failure or Ctrl-C. Exits 1 when a target failed, 2 when a suite could not run.
import os from 'node:os';
import path from 'node:path';
import { waitForQuiet } from './lib/cpu';
import { table } from './lib/measure';
import { gitRevision, loud, ProcessLabels, Revision, writeResultFile } from './lib/provenance';
import { BenchStack, log, startStack } from './lib/stack';
import { envInt, Suite, SuiteResult } from './lib/suite';
import { foundation } from './suites/foundation';
import { approvals } from './suites/approvals';
import { documents } from './suites/documents';
import { reminders } from './suites/reminders';
import { imports } from './suites/imports';
import { campaigns } from './suites/campaigns';
import { events } from './suites/events';

/** Every suite, by name. A domain adds its own suite file under bench/suites/ and lists it here. */
const SUITES: Suite[] = [foundation, approvals, documents, reminders, imports, campaigns, events];

// BENCH_RESULTS_DIR sends a run's files elsewhere (e.g. smoke runs that must not land in bench/results).
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR ? path.resolve(process.env.BENCH_RESULTS_DIR) : path.join(__dirname, 'results');

function machine(): Record<string, unknown> {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
  };
}

function select(args: string[]): Suite[] {
  const names = args.filter((a) => !a.startsWith('-'));
  if (!names.length || names.includes('all')) return SUITES;
  const unknown = names.filter((n) => !SUITES.some((s) => s.name === n));
  if (unknown.length) {
    throw new Error(`unknown suite(s): ${unknown.join(', ')}; available: ${SUITES.map((s) => `${s.name} (${s.description})`).join('; ')}`);
  }
  return SUITES.filter((s) => names.includes(s.name));
}

function report(result: SuiteResult, revision: Revision, processes: ProcessLabels): void {
  const ran = Object.entries(processes).map(([kind, label]) => `${kind} ${label}`).join(', ') || 'no Docket process';
  console.log(`\n=== ${result.suite} (${result.startedAt} → ${result.finishedAt}; revision ${revision.label}; ${ran}) ===\n`);
  console.log(result.summary);
  console.log('');
  console.log(table(['target', 'actual', 'target', 'result'], result.targets.map((t) => [t.name, `${t.actual} ${t.unit}`, `${t.op} ${t.target} ${t.unit}`, t.pass ? 'PASS' : 'FAIL'])));
}

/** BENCH_* settings that change what is measured (durations, counts, API flags): not a standard run. */
function overrides(): Record<string, string> {
  const neutral = new Set(['BENCH_QUIET_WAIT_SECONDS', 'BENCH_TAG', 'BENCH_RESULTS_DIR']);
  return Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('BENCH_') && !neutral.has(k) && v) as [string, string][]);
}

function save(result: SuiteResult, meta: Record<string, unknown>, revision: Revision, processes: ProcessLabels): string {
  // Runs with overrides are named "-custom" (then BENCH_TAG, if any), so they never read as a standard run.
  const tag = [...(Object.keys(overrides()).length ? ['custom'] : []), ...(process.env.BENCH_TAG ? [process.env.BENCH_TAG] : [])].join('-');
  const { summary: _summary, ...data } = result;
  void _summary;
  const json = JSON.stringify({ ...meta, processes, ...data }, null, 2) + '\n';
  return writeResultFile(RESULTS_DIR, { suite: result.suite, startedAt: result.startedAt, revision, processes, tag }, json);
}

function dirtyBanner(revision: Revision): string {
  return loud([
    `DIRTY TREE: the code that ran is ${revision.commit} plus uncommitted changes:`,
    ...revision.changes.map((c) => `  ${c}`),
    'These figures are not that revision\'s: the result file is named "-dirty" and its revision "+dirty".',
    'Do not quote them in bench/README.md; commit, then run again.',
  ]);
}

async function main(): Promise<number> {
  const suites = select(process.argv.slice(2));
  const revision = gitRevision();
  if (revision.dirty) console.log(dirtyBanner(revision));
  const meta = { machine: machine(), revision: revision.label, revisionDirty: revision.dirty, uncommittedChanges: revision.changes, overrides: overrides() };
  let stack: BenchStack | undefined;
  let stopping: Promise<void> | undefined;
  const teardown = (): Promise<void> => (stopping ??= (async () => {
    if (stack) {
      log('stopping the stack …');
      await stack.stop();
    }
  })());
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: tearing down`);
    void teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const t0 = Date.now();
  let failed = 0;
  const files: string[] = [];
  try {
    stack = await startStack();
    for (const suite of suites) {
      stack.processes = {};
      // The stack is up and idle: anything busy now is someone else's work and will skew the numbers.
      const busyBefore = await waitForQuiet({ maxMs: envInt('BENCH_QUIET_WAIT_SECONDS', 90) * 1000, thresholdPct: 15, log });
      if (busyBefore > 15) log(`WARNING: the machine is ${busyBefore}% busy with other processes; results will be low (see "other" in the CPU table)`);
      log(`suite ${suite.name}: ${suite.description}`);
      const result = await suite.run(stack);
      report(result, revision, stack.processes);
      const file = save(result, { ...meta, machineBusyPctBeforeRun: busyBefore }, revision, stack.processes);
      files.push(file);
      log(`results written to ${path.relative(process.cwd(), file)}`);
      failed += result.targets.filter((t) => !t.pass).length;
    }
  } finally {
    await teardown();
  }
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${failed ? `${failed} target(s) FAILED (exit code 1)` : 'all targets passed'}`);
  // Said again at the end, where the eye lands after a long run.
  if (revision.dirty) console.log(dirtyBanner(revision));
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error('[bench] failed:', err);
  process.exit(2);
});
