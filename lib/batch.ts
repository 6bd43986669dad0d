// The activity side of the batch kit: one chunk of pages that resumes from its heartbeated cursor on a
// retry, heartbeats while it works, stops when cancelled and writes progress in batches; and the one
// bounded-concurrency helper its pages (and anything else that fans out) use.
import { CancelledFailure, Context } from '@temporalio/activity';
import type { ChunkReport } from '../workflows/batch';

/**
 * Runs `work` while heartbeating every `everyMs` (with `details()`, if given): a dead worker is noticed
 * after the heartbeat timeout, not the start-to-close timeout, however long one step takes, and a cancel
 * reaches the activity (Temporal delivers it with a heartbeat's answer).
 */
export async function heartbeating<T>(work: (signal: AbortSignal) => Promise<T>, details: () => unknown = () => undefined, everyMs = 2_000): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat(details());
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  try {
    return await work(ctx.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}

export interface Page<C> {
  cursor: C | null;
  done: boolean;
}

export interface ChunkOptions<C> {
  /** Where the chunk starts: the cursor the previous chunk reported (null: the start of the batch). */
  from: C | null;
  /**
   * Prepares to go on from `cursor` — the last one heartbeated if this is a retry, else `from` — and
   * answers the cursor to start from: e.g. opens a partial file, or answers null (start over) when the
   * file is shorter than the cursor says.
   */
  start?(cursor: C | null): Promise<C | null>;
  /**
   * One page from `cursor`: does it and answers the cursor after it, and whether the batch is done. A page
   * must be idempotent by its items' natural keys: after a crash, the pages since the last heartbeat the
   * server received (the SDK sends one at most every 0.8 × heartbeat timeout) run again.
   */
  page(cursor: C | null, signal: AbortSignal): Promise<Page<C>>;
  /** Writes progress to the read model: at most every `progressEveryMs`, and once when the chunk ends. */
  progress?(cursor: C | null): Promise<void>;
  progressEveryMs?: number;
  /** The chunk returns to the workflow (its pause/cancel point) after this many pages or this long. */
  maxPages?: number;
  maxMs?: number;
}

/** What a chunk heartbeats: wrapped, so "no heartbeat yet" and "at the start (null)" differ. */
interface Beat<C> { cursor: C | null }

/** One chunk of a batch activity (see ChunkOptions); answers what the workflow's chunk loop expects. */
export async function runChunk<C>(o: ChunkOptions<C>): Promise<ChunkReport<C> & { pages: number }> {
  const ctx = Context.current();
  const beat = ctx.info.heartbeatDetails as Beat<C> | undefined;
  let cursor = beat && 'cursor' in beat ? beat.cursor : o.from;
  cursor = o.start ? await o.start(cursor) : cursor;
  const maxPages = o.maxPages ?? Infinity;
  const until = Date.now() + (o.maxMs ?? 10_000);
  const progressEvery = o.progressEveryMs ?? 1_000;
  let lastProgress = Date.now();
  let pages = 0;
  let done = false;
  let unreported = false;
  const details = (): Beat<C> => ({ cursor });
  await heartbeating(async (signal) => {
    while (!done && pages < maxPages && (pages === 0 || Date.now() < until)) {
      const next = await o.page(cursor, signal);
      cursor = next.cursor;
      done = next.done;
      pages++;
      unreported = true;
      ctx.heartbeat(details());
      // Cancelled, or the worker is shutting down: stop here; a retry resumes from this cursor.
      if (signal.aborted) throw new CancelledFailure('batch chunk cancelled');
      if (o.progress && Date.now() - lastProgress >= progressEvery) {
        await o.progress(next.cursor);
        lastProgress = Date.now();
        unreported = false;
      }
    }
  }, details);
  if (o.progress && unreported) await o.progress(cursor);
  return { cursor, done, pages };
}

/**
 * Calls `fn` for every item, at most `limit` at a time, and waits for all of them: one failure does not
 * stop the others (the caller decides what a failure means), and results keep the items' order.
 */
export async function settleWithLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i]) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, lane));
  return results;
}
