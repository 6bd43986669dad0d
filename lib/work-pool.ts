// Input-priced work off the request thread: a small pool of worker threads (piscina) in which every task
// has a time budget — a task that overruns has its thread terminated — and every thread a memory cap
// (resourceLimits), so one tenant's template or recurrence cannot stall the event loop that serves everyone.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import Piscina from 'piscina';

/** What a pool sends its thread for a task: the task, and a port to say the moment it starts. */
export interface TaskMessage { name: string; args: unknown[]; started?: MessagePort }

/** The functions a pool runs, by name (a tasks module's `tasks`). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TaskMap = Record<string, (...args: any[]) => unknown>;

/** An error as it crosses the thread boundary: its class name, message and own fields. */
export interface ThrownError { name: string; message: string; fields: Record<string, unknown> }
export type TaskResult = { ok: true; value: unknown } | { ok: false; error: ThrownError };

/** A tasks module's default export: runs one task by name and answers its value, or the error it threw. */
export function taskRunner(tasks: TaskMap) {
  return async function runTask({ name, args, started }: TaskMessage): Promise<TaskResult> {
    // The budget starts now, on a thread that is up (WorkPool.run): not while piscina waited for one to start.
    started?.postMessage(null);
    try {
      return { ok: true, value: await tasks[name](...args) };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      return { ok: false, error: { name: e.constructor.name, message: e.message, fields: { ...e } } };
    }
  };
}

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
  /** The tasks module: its default export answers a TaskResult (see taskRunner). */
  filename: string;
  /** Error classes that cross the thread boundary as themselves; anything else arrives as a plain Error. */
  errors?: Record<string, { prototype: Error }>;
  /** Threads, i.e. tasks running at once (default 2). */
  threads?: number;
  /** Threads kept started (default 1): a task given a thread that is still starting waits for it (outside its budget). */
  warmThreads?: number;
  /** Old-generation heap of each thread, MB (default 128): a task that needs more has its thread stopped. */
  memoryMb?: number;
  /** Tasks waiting for a thread at most (default 64); more are refused at once. */
  maxWaiting?: number;
  /** How long a task waits for a thread at most (default 5 s); its budget starts when it gets one. */
  maxWaitMs?: number;
}

function rehydrate(e: ThrownError, known: Record<string, { prototype: Error }>): Error {
  const cls = Object.hasOwn(known, e.name) ? known[e.name] : undefined;
  return Object.assign(cls ? Object.create(cls.prototype) as Error : new Error(), e.fields, { message: e.message });
}

/** How long a task waits at most for a thread that is starting (loading the tasks module), before its budget. */
const THREAD_START_MS = 30_000;

export class WorkPool<T extends TaskMap = TaskMap> {
  private readonly pool: Piscina;
  private readonly threads: number;
  private readonly maxWaiting: number;
  private readonly maxWaitMs: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly errors: Record<string, { prototype: Error }>;

  constructor(opts: WorkPoolOptions) {
    this.errors = opts.errors ?? {};
    this.threads = Math.max(1, opts.threads ?? 2);
    this.maxWaiting = opts.maxWaiting ?? 64;
    this.maxWaitMs = opts.maxWaitMs ?? 5_000;
    const memoryMb = opts.memoryMb ?? 128;
    this.pool = new Piscina({
      filename: opts.filename,
      // Threads kept warm (one unless asked), so a task does not pay for loading the modules.
      minThreads: Math.min(this.threads, Math.max(1, opts.warmThreads ?? 1)), maxThreads: this.threads, idleTimeout: 60_000,
      resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(32, Math.ceil(memoryMb / 4)), stackSizeMb: 4 },
    });
  }

  /**
   * Runs `name(...args)` on a thread within `budgetMs`, counted from when the task starts on its thread (the thread
   * says so): a thread started to replace a stopped one, or on demand, is not charged to the next task's budget —
   * maybe another tenant's. A task never waits in piscina's queue for a busy thread: this class hands out the
   * threads. Errors the task throws come back as their own class when it is one of `errors`; an overrun is
   * TaskLimitError.
   */
  async run<N extends keyof T & string>(name: N, args: Parameters<T[N]>, budgetMs: number): Promise<Awaited<ReturnType<T[N]>>> {
    await this.acquire();
    const stop = new AbortController();
    const { port1, port2 } = new MessageChannel();
    // Until the task starts, only a thread that never comes up is given up on.
    let timer = setTimeout(() => stop.abort(), THREAD_START_MS + budgetMs);
    port1.once('message', () => {
      clearTimeout(timer);
      timer = setTimeout(() => stop.abort(), budgetMs);
    });
    let result: TaskResult;
    try {
      const task: TaskMessage = { name, args, started: port2 };
      result = await this.pool.run(task, { signal: stop.signal, transferList: [port2] });
    } catch (err) {
      const e = err as Error & { code?: string };
      const stopped = e.name === 'AbortError' ? new TaskLimitError('time', `took longer than ${budgetMs} ms and was stopped`)
        : e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? new TaskLimitError('memory', 'needed more memory than a task may use and was stopped') : null;
      throw stopped ?? err;
    } finally {
      clearTimeout(timer);
      port1.close();
      this.release();
    }
    if (!result.ok) throw rehydrate(result.error, this.errors);
    return result.value as Awaited<ReturnType<T[N]>>;
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
