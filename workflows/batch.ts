// The workflow side of the batch kit: a chunk loop with pause/cancel points between chunks, Status kept
// current, and continue-as-new before the history outgrows its budget. Pure (only @temporalio/workflow):
// the chunks are the domain's activities (lib/batch.ts runs one), the Updates that pause/cancel are the domain's.
import { allHandlersFinished, ApplicationFailure, condition, workflowInfo } from '@temporalio/workflow';
import { setWorkflowStatus } from './status';

/** What a chunk activity answers: where the next chunk starts, and whether the batch is done. */
export interface ChunkReport<C> {
  cursor: C | null;
  done: boolean;
}

/** Where a batch stands between runs: what continue-as-new hands to the next run. */
export interface BatchResume<C> {
  cursor: C | null;
  paused: boolean;
}

/** Refusals of the control commands (ApplicationFailure types); the domain maps them to its HTTP answers. */
export const BATCH_REFUSALS = {
  /** Pause, resume or cancel after the batch finished or was cancelled. */
  BATCH_FINISHED: 409,
  BATCH_PAUSED: 409,
  BATCH_NOT_PAUSED: 409,
} as const;
export type BatchRefusal = keyof typeof BATCH_REFUSALS;

type ControlState = 'running' | 'paused' | 'cancelled';

/**
 * Pause, resume and cancel of one batch. The domain wires each to its own Update:
 * `setHandler(pauseUpdate, () => control.pause(), { validator: () => control.validate('pause') })`.
 * A command's handler returns once the loop has acted on it (between chunks, after `onControl` wrote the
 * read model), so the caller's next read sees it; a refused command writes nothing.
 */
export class BatchControl {
  private wanted: ControlState;
  private applied: ControlState;
  private seq = 0;
  private appliedSeq = 0;
  private finished = false;
  private waiting = 0;

  constructor(resume?: BatchResume<unknown>) {
    this.wanted = this.applied = resume?.paused ? 'paused' : 'running';
  }

  get paused(): boolean { return this.wanted === 'paused'; }
  get cancelled(): boolean { return this.wanted === 'cancelled'; }

  /** The validator of a command: refuses synchronously what the batch's state does not allow. */
  validate(command: 'pause' | 'resume' | 'cancel'): void {
    const refuse = (type: BatchRefusal, message: string) => { throw ApplicationFailure.nonRetryable(message, type); };
    if (this.finished || this.wanted === 'cancelled') refuse('BATCH_FINISHED', 'The batch has finished');
    if (command === 'pause' && this.wanted === 'paused') refuse('BATCH_PAUSED', 'The batch is paused already');
    if (command === 'resume' && this.wanted !== 'paused') refuse('BATCH_NOT_PAUSED', 'The batch is not paused');
  }

  pause(): Promise<void> { return this.request('paused'); }
  resume(): Promise<void> { return this.request('running'); }
  cancel(): Promise<void> { return this.request('cancelled'); }

  private async request(state: ControlState): Promise<void> {
    this.wanted = state;
    const mine = ++this.seq;
    this.waiting++;
    try {
      await condition(() => this.appliedSeq >= mine || this.finished);
    } finally {
      this.waiting--;
    }
    // The last chunk ended the batch before the loop reached this command.
    if (this.appliedSeq < mine) throw ApplicationFailure.nonRetryable('The batch finished before the command took effect', 'BATCH_FINISHED');
  }

  /** @internal The loop: acts on the newest command (Status, onControl), then marks it applied. */
  async apply(onChange: (state: ControlState) => Promise<void>): Promise<{ state: ControlState; seq: number }> {
    const seq = this.seq;
    const state = this.wanted;
    if (state !== this.applied) {
      await onChange(state);
      this.applied = state;
    }
    this.appliedSeq = Math.max(this.appliedSeq, seq);
    return { state, seq };
  }

  /** @internal */
  changedSince(seq: number): boolean { return this.seq !== seq; }

  /** @internal The loop ended: commands still waiting are answered (before the workflow may return), later ones refused. */
  async finish(): Promise<void> {
    this.finished = true;
    await condition(() => this.waiting === 0);
  }
}

export interface BatchOptions<C, R extends ChunkReport<C>> {
  /** The resume state a previous run handed over (continue-as-new); absent on the first run. */
  resume?: BatchResume<C>;
  /** Runs one chunk from `cursor` (an activity that writes progress to the read model) and reports. */
  chunk(cursor: C | null): Promise<R>;
  /** Continues as new with the domain's input plus `resume` (the domain's own continueAsNew call). */
  continueAsNew(resume: BatchResume<C>): Promise<never>;
  /** Pause/cancel, if the domain offers them (the same object its Update handlers call). */
  control?: BatchControl;
  /** Writes a control change to the read model (an activity) before the command's caller is answered. */
  onControl?(state: ControlState): Promise<void>;
  /** Status values while running and paused (defaults `running`, `paused`); final ones are the domain's. */
  statuses?: { running: string; paused: string };
  /** The patches the workflow's input names (workflows/patches.ts), for its Status upserts. */
  known?: readonly string[];
  /** History events per run before continuing as new (default 2,000; also when Temporal suggests it). */
  historyBudget?: number;
  /** Chunks per run before continuing as new, whatever the history (a domain's older rule). */
  maxChunksPerRun?: number;
}

export interface BatchEnd<C, R> {
  cancelled: boolean;
  cursor: C | null;
  /** The report of the last chunk this run ran (absent if none ran, e.g. cancelled while paused). */
  last?: R;
}

export const DEFAULT_HISTORY_BUDGET = 2_000;

/**
 * Calls `chunk` until it reports done, or until cancelled (checked between chunks). Between chunks it
 * applies pause/resume/cancel, and continues as new past the history budget; while paused it waits, and
 * continues as new if the history asks for it while waiting. The caller's try/catch must rethrow
 * `ContinueAsNew` (isCancellation does not cover it).
 */
export async function runBatch<C, R extends ChunkReport<C>>(o: BatchOptions<C, R>): Promise<BatchEnd<C, R>> {
  const control = o.control ?? new BatchControl(o.resume);
  const statuses = o.statuses ?? { running: 'running', paused: 'paused' };
  const budget = o.historyBudget ?? DEFAULT_HISTORY_BUDGET;
  let cursor: C | null = o.resume?.cursor ?? null;
  let chunks = 0;
  let last: R | undefined;
  const overBudget = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= budget || (o.maxChunksPerRun !== undefined && chunks >= o.maxChunksPerRun);
  };
  const nextRun = async (): Promise<never> => {
    // Commands already applied are answered in this run, not lost with it.
    await condition(allHandlersFinished);
    return o.continueAsNew({ cursor, paused: control.paused });
  };
  const onChange = async (state: ControlState) => {
    if (state !== 'cancelled') setWorkflowStatus(state === 'paused' ? statuses.paused : statuses.running, o.known);
    await o.onControl?.(state);
  };

  try {
    for (;;) {
      const { state, seq } = await control.apply(onChange);
      if (control.changedSince(seq)) continue; // a command landed while onControl wrote
      if (state === 'cancelled') return { cancelled: true, cursor, last };
      if (state === 'paused') {
        await condition(() => control.changedSince(seq) || overBudget());
        if (!control.changedSince(seq)) await nextRun();
        continue;
      }
      if (overBudget()) await nextRun();
      last = await o.chunk(cursor);
      chunks++;
      cursor = last.cursor;
      if (last.done) return { cancelled: false, cursor, last };
    }
  } finally {
    await control.finish();
  }
}
