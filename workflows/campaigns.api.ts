// Shared definitions of the campaign workflows, imported by the API, the worker and the workflows.
import { defineUpdate } from '@temporalio/workflow';
import type { CommandAuthor } from '../lib/audit';
import type { BatchResume } from './batch';
import { CANCELLED_RUN_PATCH, STATUS_UPSERT_PATCH } from './patches';

export const CAMPAIGNS_TASK_QUEUE = 'docket-campaigns';
export const CAMPAIGNS_DOMAIN = 'campaigns';
export const CAMPAIGN_TESTS_DOMAIN = 'campaign-tests';
/** How long a test send waits for room in its tenant's send limit before it is refused (RATE_LIMITED, retry after it). */
export const TEST_SEND_WAIT_MS = 10_000;

/** Retry runs (2 on) begun before lanes took no plan: the marker tells a replay which kind it is. */
export const LANES_PATCH = 'campaign-send-lanes';

/**
 * The patches the API's code has, named in every campaign run's input (workflows/patches.ts): a new run takes their
 * paths without a marker or a TemporalChangeVersion write. Workers are deployed before an API that names a new one.
 */
export const CAMPAIGN_PATCHES = [STATUS_UPSERT_PATCH, LANES_PATCH, CANCELLED_RUN_PATCH];

/** The refusal of a command the campaign's state does not allow (409 INVALID_STATE). */
export const INVALID_STATE = 'INVALID_STATE';

export interface CampaignInput {
  tenantId: string;
  campaignId: string;
  /** 1: the send (snapshot, then every recipient); 2, 3 …: a "retry failed" (the recipients put back to pending). */
  run: number;
  /** Who asked (the end event names them). */
  by: CommandAuthor;
  /** When to send (ISO instant); absent: now. */
  sendAt?: string;
  /** History events per run before continuing as new (the batch kit's default, 2,000, when absent). */
  historyBudget?: number;
  /** The patches the starting code had (CAMPAIGN_PATCHES), handed on by continue-as-new. */
  patches?: string[];
  /**
   * Set by continue-as-new: where the send's batches stand — its lanes, or (runs begun before lanes) the last
   * recipient number done.
   */
  resume?: { batch: BatchResume<SendCursor>; backoffMs?: number };
}

/**
 * One lane of a send: the recipients numbered after `after` up to `until` (null: to the end), sent by one chunk
 * activity at a time. A send has as many lanes as the worker's CAMPAIGN_LANES when it began; their chunks run at
 * once, so several worker processes share one campaign.
 */
export interface SendLane {
  after: number;
  until: number | null;
  done: boolean;
}

/** The batch kit's cursor of a send: its lanes (a number from runs begun before lanes: one open lane). */
export type SendCursor = SendLane[] | number;

/** What the snapshot answers: the audience's size and how many lanes to send it in. */
export interface SendPlan {
  audienceSize: number;
  /** Absent from runs begun before lanes: one. */
  lanes?: number;
}

/** The plan's lanes: recipients 1..N in `lanes` ranges of about the same size (one open lane without a plan). */
export function lanesOf(plan: SendPlan | undefined): SendLane[] {
  const count = Math.min(plan?.lanes ?? 1, plan?.audienceSize ?? 1);
  if (!plan || count <= 1) return [{ after: 0, until: null, done: false }];
  const size = plan.audienceSize;
  return Array.from({ length: count }, (_, i) => ({ after: Math.floor((i * size) / count), until: Math.floor(((i + 1) * size) / count), done: false }));
}

/** A cursor from a run begun before lanes (the last recipient number done) is one open lane. */
export const lanesFrom = (cursor: SendCursor): SendLane[] => (typeof cursor === 'number' ? [{ after: cursor, until: null, done: false }] : cursor);


export interface CampaignOutcome {
  status: 'finished' | 'cancelled' | 'failed';
  error?: { code: string; message: string };
}

/** What one send chunk reports: the batch kit's cursor, and whether the SMTP server could not be reached. */
export interface SendChunkReport {
  cursor: number | null;
  done: boolean;
  smtpDown?: boolean;
}

export type CampaignControl = 'running' | 'paused' | 'cancelled';

/** Pause, resume and cancel: each answers once the state is written; refused with INVALID_STATE. */
export const pauseCampaignUpdate = defineUpdate<void, [{ by: CommandAuthor }]>('pauseCampaign');
export const resumeCampaignUpdate = defineUpdate<void, [{ by: CommandAuthor }]>('resumeCampaign');
export const cancelCampaignUpdate = defineUpdate<void, [{ by: CommandAuthor }]>('cancelCampaign');

export interface TestSendInput {
  tenantId: string;
  campaignId: string;
  /** Unique per test send: part of each message's idempotency key. */
  testId: string;
  emails: string[];
  /** The subscriber whose data fill the merge fields, or sample data. */
  subscriberId?: string;
  sample?: { name?: string | null; email?: string; attributes?: Record<string, unknown> };
}

export interface TestSendResult {
  sent: { email: string; messageId: string }[];
  failed: { email: string; code: number | null; message: string }[];
}
