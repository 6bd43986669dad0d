// Input-priced work off the request thread: a small pool of worker threads (piscina) in which every task
// has a time budget — a task that overruns has its thread terminated — and every thread a memory cap
// (resourceLimits), so one tenant's template or recurrence cannot stall the event loop that serves everyone.
import fs from 'node:fs';
import path from 'node:path';
import Piscina from 'piscina';
import { RecurrenceError } from './recurrence';
import { TemplateRenderError, TemplateSyntaxError } from './documents/templates';
import type { TaskResult, Tasks } from './work-pool-tasks';

/** The task ran out of its time budget or its thread's memory, and was stopped. */
export class TaskLimitError extends Error {
  constructor(readonly limit: 'time' | 'memory', message: string) {
    super(message);
    this.name = 'TaskLimitError';
  }
}

/** Every thread is busy and the wait for one would be too long: try again shortly. */
export class WorkPoolBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkPoolBusyError';
  }
}

export interface WorkPoolOptions {
  /** The tasks module (default: Docket's, lib/work-pool-tasks). Its default export answers a TaskResult. */
  filename?: string;
  /** Threads, i.e. tasks running at once (default 2). */
  threads?: number;
  /** Old-generation heap of each thread, MB (default 128): a task that needs more has its thread stopped. */
  memoryMb?: number;
  /** Tasks waiting for a thread at most (default 64); more are refused at once. */
  maxWaiting?: number;
  /** How long a task waits for a thread at most (default 5 s); its budget starts when it gets one. */
  maxWaitMs?: number;
}

/** Error classes that cross the thread boundary as themselves; anything else arrives as a plain Error. */
const KNOWN_ERRORS: Record<string, { prototype: Error }> = { RecurrenceError, TemplateRenderError, TemplateSyntaxError };

function rehydrate(e: { name: string; message: string; fields: Record<string, unknown> }): Error {
  const cls = KNOWN_ERRORS[e.name];
  return Object.assign(cls ? Object.create(cls.prototype) as Error : new Error(), e.fields, { message: e.message });
}

/** Docket's tasks compiled (dist/) or, from source, through tsx (lib/work-pool-tasks.cjs). */
function defaultTasksFile(): string {
  const compiled = path.join(__dirname, 'work-pool-tasks.js');
  return fs.existsSync(compiled) ? compiled : path.join(__dirname, 'work-pool-tasks.cjs');
}

export class WorkPool {
  private readonly pool: Piscina;
  private readonly threads: number;
  private readonly maxWaiting: number;
  private readonly maxWaitMs: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(opts: WorkPoolOptions = {}) {
    this.threads = Math.max(1, opts.threads ?? 2);
    this.maxWaiting = opts.maxWaiting ?? 64;
    this.maxWaitMs = opts.maxWaitMs ?? 5_000;
    const memoryMb = opts.memoryMb ?? 128;
    this.pool = new Piscina({
      filename: opts.filename ?? defaultTasksFile(),
      // One thread stays warm, so the first task does not pay for loading the modules.
      minThreads: 1, maxThreads: this.threads, idleTimeout: 60_000,
      resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(32, Math.ceil(memoryMb / 4)), stackSizeMb: 4 },
    });
  }

  /**
   * Runs `name(...args)` on a thread within `budgetMs` (counted from when it gets a thread; a task never
   * waits in piscina's queue, this class hands out the threads). Errors the task throws come back as
   * their own class (RecurrenceError, TemplateRenderError, …); an overrun is TaskLimitError.
   */
  async run<N extends keyof Tasks>(name: N, args: Parameters<Tasks[N]>, budgetMs: number): Promise<Awaited<ReturnType<Tasks[N]>>> {
    await this.acquire();
    let result: TaskResult;
    try {
      result = await this.pool.run({ name, args }, { signal: AbortSignal.timeout(budgetMs) });
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.name === 'AbortError') throw new TaskLimitError('time', `took longer than ${budgetMs} ms and was stopped`);
      if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') throw new TaskLimitError('memory', 'needed more memory than a task may use and was stopped');
      throw err;
    } finally {
      this.release();
    }
    if (!result.ok) throw rehydrate(result.error);
    return result.value as Awaited<ReturnType<Tasks[N]>>;
  }

  private async acquire(): Promise<void> {
    if (this.running < this.threads) {
      this.running++;
      return;
    }
    if (this.waiting.length >= this.maxWaiting) throw new WorkPoolBusyError(`${this.waiting.length} tasks are waiting already`);
    await new Promise<void>((resolve, reject) => {
      const turn = () => { clearTimeout(timer); resolve(); };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(turn), 1);
        reject(new WorkPoolBusyError(`no thread was free within ${this.maxWaitMs} ms`));
      }, this.maxWaitMs);
      this.waiting.push(turn);
    });
  }

  private release(): void {
    // The slot passes straight to the next waiter (running stays the same), or is freed.
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

let shared: WorkPool | undefined;

/** The process's pool (made on first use). */
export function workPool(opts?: WorkPoolOptions): WorkPool {
  shared ??= new WorkPool(opts);
  return shared;
}

export async function closeWorkPool(): Promise<void> {
  const pool = shared;
  shared = undefined;
  await pool?.close();
}
