// Where a result comes from: the git revision (and whether the tree was dirty), how the API and worker ran,
// and a result file name that says all of that and never replaces an earlier run's file.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/paths';

export interface Revision {
  /** Short commit hash of HEAD, or "unknown" outside a git checkout. */
  commit: string;
  /**
   * Tracked files differ from HEAD, or untracked files (outside bench/results/) exist: what ran is not
   * the commit, so the figures must not be quoted as that revision's.
   */
  dirty: boolean;
  /** What `git status --porcelain` listed (first 20 lines), so a dirty result says what differed. */
  changes: string[];
  /** `<commit>` or `<commit>+dirty`: the form result files have always used. */
  label: string;
}

export function gitRevision(): Revision {
  // trimEnd, not trim: a porcelain line starts with its status column, which may be a space (" M file").
  const git = (args: string[]) => execFileSync('git', args, { cwd: PROJECT_ROOT, encoding: 'utf8' }).trimEnd();
  try {
    const commit = git(['rev-parse', '--short', 'HEAD']).trim();
    // Result files are written by the runs themselves; everything else that differs from HEAD counts.
    const changes = git(['status', '--porcelain', '--', '.', ':(exclude)bench/results']).split('\n').filter(Boolean);
    const dirty = changes.length > 0;
    return { commit, dirty, changes: changes.slice(0, 20), label: dirty ? `${commit}+dirty` : commit };
  } catch {
    return { commit: 'unknown', dirty: true, changes: ['not a git checkout'], label: 'unknown+dirty' };
  }
}

/** How a Docket process ran: compiled JavaScript (as the Docker image runs it) or TypeScript under tsx. */
export type Runtime = 'compiled' | 'tsx';

export const runtimeOf = (entry: string): Runtime => (entry.endsWith('.ts') ? 'tsx' : 'compiled');

/** The Docket processes a suite started, by kind, with how each ran: e.g. { api: 'compiled (bench/.build/api/server.js)' }. */
export type ProcessLabels = Partial<Record<'api' | 'worker', string>>;

export function processLabel(entry: string): string {
  return `${runtimeOf(entry)} (${entry})`;
}

/**
 * `<suite>-<UTC date>T<hhmm>Z-<commit>[-dirty][-api-tsx][-worker-tsx][-<tag> | -custom].json`, created
 * exclusively: if that name exists (two runs in one minute), `-2`, `-3` … is appended, so no run ever
 * overwrites another's file.
 */
export function writeResultFile(dir: string, parts: { suite: string; startedAt: string; revision: Revision; processes: ProcessLabels; tag: string }, json: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = `${parts.startedAt.slice(0, 10)}T${parts.startedAt.slice(11, 16).replace(':', '')}Z`;
  const tsx = (Object.entries(parts.processes) as [string, string][]).filter(([, label]) => label.startsWith('tsx')).map(([kind]) => `${kind}-tsx`);
  const base = [parts.suite, stamp, parts.revision.commit, ...(parts.revision.dirty ? ['dirty'] : []), ...tsx, ...(parts.tag ? [parts.tag] : [])].join('-');
  for (let n = 1; ; n++) {
    const file = path.join(dir, `${base}${n > 1 ? `-${n}` : ''}.json`);
    try {
      fs.writeFileSync(file, json, { flag: 'wx' });
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** A banner that cannot be missed in a scrolling log. */
export function loud(lines: string[]): string {
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const bar = '!'.repeat(width);
  return [bar, ...lines.map((l) => `! ${l.padEnd(width - 4)} !`), bar].join('\n');
}
