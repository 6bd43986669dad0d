// `npm run bench [-- <suite> …]`: stands up a throwaway stack (embedded Postgres, Temporal dev server,
// migrations, one tenant), runs the selected suites (all when none is named), prints a table per
// suite, writes bench/results/<suite>-<date>.json and tears the stack down, also on failure or Ctrl-C.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitForQuiet } from './lib/cpu';
import { table } from './lib/measure';
import { BenchStack, log, startStack } from './lib/stack';
import { envInt, Suite, SuiteResult } from './lib/suite';
import { foundation } from './suites/foundation';
import { approvals } from './suites/approvals';
import { documents } from './suites/documents';
import { reminders } from './suites/reminders';

/** Every suite, by name. A domain adds its own suite file under bench/suites/ and lists it here. */
const SUITES: Suite[] = [foundation, approvals, documents, reminders];

const RESULTS_DIR = path.join(__dirname, 'results');

function machine(): Record<string, unknown> {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
  };
}

function gitRevision(): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: __dirname, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: __dirname, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head}+dirty` : head;
  } catch {
    return null;
  }
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

function report(result: SuiteResult): void {
  console.log(`\n=== ${result.suite} (${result.startedAt} → ${result.finishedAt}) ===\n`);
  console.log(result.summary);
  console.log('');
  console.log(table(['target', 'actual', 'target', 'result'], result.targets.map((t) => [t.name, `${t.actual} ${t.unit}`, `${t.op} ${t.target} ${t.unit}`, t.pass ? 'PASS' : 'FAIL'])));
}

/** BENCH_* settings that change what is measured (durations, counts, API flags): not a standard run. */
function overrides(): Record<string, string> {
  const neutral = new Set(['BENCH_QUIET_WAIT_SECONDS', 'BENCH_REVISION', 'BENCH_TAG']);
  return Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('BENCH_') && !neutral.has(k) && v) as [string, string][]);
}

function save(result: SuiteResult, meta: Record<string, unknown>): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  // A standard run is <suite>-<date>.json; runs with overrides get a tag so they never replace it.
  const tag = process.env.BENCH_TAG || (Object.keys(overrides()).length ? 'custom' : '');
  const file = path.join(RESULTS_DIR, `${result.suite}-${result.startedAt.slice(0, 10)}${tag ? `-${tag}` : ''}.json`);
  const { summary: _summary, ...data } = result;
  void _summary;
  fs.writeFileSync(file, JSON.stringify({ ...meta, ...data }, null, 2) + '\n');
  return file;
}

async function main(): Promise<number> {
  const suites = select(process.argv.slice(2));
  const meta = { machine: machine(), revision: process.env.BENCH_REVISION ?? gitRevision(), overrides: overrides() };
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
  try {
    stack = await startStack();
    for (const suite of suites) {
      // The stack is up and idle: anything busy now is someone else's work and will skew the numbers.
      const busyBefore = await waitForQuiet({ maxMs: envInt('BENCH_QUIET_WAIT_SECONDS', 90) * 1000, thresholdPct: 15, log });
      if (busyBefore > 15) log(`WARNING: the machine is ${busyBefore}% busy with other processes; results will be low (see "other" in the CPU table)`);
      log(`suite ${suite.name}: ${suite.description}`);
      const result = await suite.run(stack);
      report(result);
      const file = save(result, { ...meta, machineBusyPctBeforeRun: busyBefore });
      log(`results written to ${path.relative(process.cwd(), file)}`);
      failed += result.targets.filter((t) => !t.pass).length;
    }
  } finally {
    await teardown();
  }
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${failed ? `${failed} target(s) FAILED` : 'all targets passed'}`);
  return 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error('[bench] failed:', err);
  process.exit(1);
});
