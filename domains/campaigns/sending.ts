// Sending a campaign: one batch of recipients at a time, by key range — render each message, send them through one
// pooled SMTP transport at bounded concurrency within the tenant's send limits, and write the batch's outcomes in one
// statement with the campaign's counts. A recipient recorded `sent` is never sent again; after a crash only the
// batch that was in flight when it happened goes out again, each message with the same Message-ID.
import { setTimeout } from 'node:timers/promises';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { Campaign } from '../../db/models/campaigns';
import { settleWithLimit } from '../../lib/batch';
import { EmailRejectedError, type EmailSender } from '../../lib/notify/email';
import type { SendLease, SendLimiter } from '../../lib/send-limiter';
import { TaskLimitError, WorkPoolBusyError } from '../../lib/work-pool';
import { TEMPLATE_LIMITS, TemplateRenderError } from '../documents/templates';
import { campaignWorkPool } from '../work-pool';
import { charsOf, type CampaignContent, type MergeData } from './templates';
import { unsubscribeHeaders, type UnsubscribeLinks } from './unsubscribe';

export interface SendOptions {
  email: EmailSender;
  links: UnsubscribeLinks;
  /** The tenant's maxPerMinute and maxConcurrent, held across campaigns and worker processes: a batch is what it grants. */
  limiter: SendLimiter;
  /** Recipients per batch (the most that can go out twice after a crash). */
  batchSize: number;
  /** Messages in flight at once (the pooled transport has as many connections), within the lease's slots. */
  concurrency: number;
  /** A `mailto:` address for List-Unsubscribe besides the link, if the deployment reads one. */
  unsubscribeMailto?: string;
  /**
   * The longest wait for the limiter's grant: past it the batch sends nothing and hands back, so a pause or cancel
   * is not held up by a tenant's exhausted minute.
   */
  maxWaitMs: number;
}

interface RecipientRow {
  n: number;
  subscriber_id: string;
  email: string;
  name: string | null;
  attributes: Record<string, unknown> | null;
  active: boolean;
}

type Outcome =
  | { n: number; status: 'sent'; messageId: string }
  | { n: number; status: 'failed'; code: number | null; error: string }
  | { n: number; status: 'skipped'; error: string };

/** The SMTP server could not be reached (refused, reset, timed out, 421/503): nothing about the recipients. */
export class SmtpUnavailableError extends Error {
  override readonly name = 'SmtpUnavailableError';
}

/** The idempotency key of one recipient's message: its Message-ID is derived from it (lib/notify/email.ts). */
export const recipientMessageKey = (campaignId: string, subscriberId: string) => `campaign:${campaignId}:${subscriberId}`;

/** The sender as the campaign names it (an address, with a display name if it has one). */
export const senderOf = (c: Pick<Campaign, 'fromEmail' | 'fromName'>) => (c.fromName ? { name: c.fromName, address: c.fromEmail } : c.fromEmail);

/** A failure that says something about this one recipient (a 4xx or 5xx reply to it), not about the server. */
function recipientFailure(err: unknown): { code: number | null; error: string } | null {
  if (err instanceof EmailRejectedError) return { code: err.responseCode, error: err.message };
  const code = (err as { responseCode?: unknown }).responseCode;
  // 421 and 503 are about the session ("closing", "bad sequence"): the server, not the address.
  if (typeof code === 'number' && code >= 400 && code < 600 && code !== 421 && code !== 503) return { code, error: (err as Error).message };
  return null;
}

/**
 * What rendering one message may cost on average within a batch, beyond the pool's fixed allowance. A message
 * renders in well under a millisecond; a template that needs more than this per recipient would hold a pool
 * thread for hours over a large audience, so the campaign is stopped instead (TEMPLATE_RENDER_LIMIT).
 */
export const RENDER_MS_PER_MESSAGE = 20;

/** How long a batch waits before handing back when the campaigns' pool has no thread for it (no busy loop meanwhile). */
const BUSY_PAUSE_MS = 1_000;

/** A batch's messages took more than their budget to render: the template, not a recipient, is at fault. */
export class CampaignRenderLimitError extends Error {
  override readonly name = 'CampaignRenderLimitError';
}

/**
 * What one batch's rendered messages may hold (characters): they are kept in the worker's memory until sent, so a
 * large newsletter renders (and goes out) a few at a time instead of 500 at once. At 2 bytes a character, 16 MB.
 */
export const BATCH_OUTPUT_CHARS = 8_000_000;

/**
 * Messages one render task takes at most: the campaigns' thread is shared by every tenant's sends on the worker, and
 * is handed to the next waiting batch between tasks — so a tenant rendering 20 ms a message holds it ~1 s at a time,
 * not for a whole batch of 500 (10 s, past the 5 s another batch waits for a thread before handing back).
 */
const TASK_MESSAGES = 50;

/**
 * Renders a batch's messages on the campaigns' work pool (domains/work-pool.ts), not on the worker's event loop:
 * the tenant writes the template, and the sandbox's per-part limit (2 s) times three parts times a batch would
 * otherwise stall every other activity of the worker. The batch has one budget; past it, its thread is stopped.
 * Answers the first messages, in order, up to BATCH_OUTPUT_CHARS (at least one): the rest wait for the next batch.
 */
export async function renderBatch(
  c: Pick<Campaign, 'id' | 'version' | 'subject' | 'html' | 'text'>, data: MergeData[], budgetMs = TEMPLATE_LIMITS.budgetMs + data.length * RENDER_MS_PER_MESSAGE,
): Promise<(CampaignContent | { error: string })[]> {
  const content = { subject: c.subject, html: c.html, text: c.text };
  const out: (CampaignContent | { error: string })[] = [];
  // The budget is spent only by rendering: waiting for the thread (another batch's task) costs none of it.
  let left = budgetMs;
  let chars = 0;
  try {
    while (out.length < data.length && chars < BATCH_OUTPUT_CHARS) {
      const part = data.slice(out.length, out.length + TASK_MESSAGES);
      // The thread stops at the batch's output cap itself, so no task's output outgrows it.
      const { messages, ms } = await campaignWorkPool().run('renderCampaignBatch', [content, part, `${c.id}:${c.version}`, BATCH_OUTPUT_CHARS - chars], Math.max(1, Math.round(left)));
      out.push(...messages);
      left -= ms;
      chars += messages.reduce((n, m) => n + charsOf(m), 0);
    }
  } catch (err) {
    // No thread for the next task in time: what is rendered goes out now, the rest with the next batch.
    if (err instanceof WorkPoolBusyError && out.length) return out;
    if (err instanceof TaskLimitError) {
      const what = err.limit === 'time' ? `took longer than ${budgetMs} ms and was stopped` : 'needed more memory than a task may use';
      throw new CampaignRenderLimitError(`Rendering ${data.length} messages ${what}; make the template do less work (smaller loops, less data)`);
    }
    throw err;
  }
  return out;
}

/** One message of the campaign's current version, rendered on the work pool (a test send); a TemplateRenderError if it cannot be. */
export async function renderFor(c: Campaign, data: MergeData): Promise<CampaignContent> {
  const [msg] = await renderBatch(c, [data]);
  if ('error' in msg) throw new TemplateRenderError('message', msg.error);
  return msg;
}

/**
 * Sends the next batch after recipient `after` (by number, up to `until` if the lane ends there): reads up to
 * `batchSize` pending recipients, asks the tenant's send limits for as many as are still active (those no longer
 * active since the snapshot are skipped and need no grant), sends what is granted, and records the outcomes; answers
 * the last number it covered and whether none is left. Throws SmtpUnavailableError when the server cannot be reached
 * — after recording what did go out, leaving the rest pending.
 */
export async function sendBatch(sequelize: Sequelize, c: Campaign, range: { after: number; until: number | null }, o: SendOptions, signal?: AbortSignal): Promise<{ last: number; done: boolean }> {
  const { after, until } = range;
  // The recipients first, then the grant for just them: a grant is counted in the tenant's minute whether used or not.
  const rows = await sequelize.query<RecipientRow>(`SELECT r.n, r.subscriber_id, r.email, s.name, s.attributes,
      COALESCE(s.status = 'active' AND s.erased_at IS NULL, false) AS active
    FROM campaign_recipients r LEFT JOIN subscribers s ON s.tenant_id = r.tenant_id AND s.id = r.subscriber_id
    WHERE r.campaign_id = $1 AND r.n > $2 AND r.n <= $4 AND r.status = 'pending' ORDER BY r.n LIMIT $3`, { bind: [c.id, after, o.batchSize, until ?? 2_147_483_647], type: QueryTypes.SELECT });
  if (!rows.length) return { last: after, done: true };
  const active = rows.filter((r) => r.active);
  // At most what a lease can be granted (the batch is cut to the grant below): no more rounds than the slots allow, and
  // no more than the tenant's pace grants at once (11 at the default 600 a minute) — a message rendered for a grant
  // that does not come is rendered again with the next batch.
  const { tenantId, id: campaignId } = c;
  let ask = active.length ? Math.min(active.length, o.concurrency * LEASE_ROUNDS, await o.limiter.largestGrant(tenantId)) : 0;
  // Rendered before the grant is asked for: a batch whose rendering fails, or waits too long for a pool thread, has
  // used none of the tenant's minute. (Those a smaller grant leaves out are rendered again with the next batch.)
  const toRender = active.slice(0, ask);
  const urls = new Map(toRender.map((r) => [r.n, o.links.url({ tenantId, campaignId, subscriberId: r.subscriber_id })]));
  let rendered: (CampaignContent | { error: string })[];
  try {
    rendered = ask ? await renderBatch(c, toRender.map((r) => ({ subscriber: { name: r.name, email: r.email, attributes: r.attributes ?? {} }, unsubscribe_url: urls.get(r.n)! }))) : [];
  } catch (err) {
    if (!(err instanceof WorkPoolBusyError)) throw err;
    // Every thread busy (other campaigns rendering): hand back after a pause, as when the grant is not given in time.
    await setTimeout(BUSY_PAUSE_MS, undefined, { signal }).catch(() => undefined);
    return { last: after, done: false };
  }
  // Fewer rendered (the batch's output cap): only those are asked for.
  ask = rendered.length;
  const messages = new Map(rendered.map((m, i) => [toRender[i].n, m]));
  let lease: SendLease | undefined;
  let batch = rows;
  if (active.length) {
    const waited = AbortSignal.timeout(o.maxWaitMs);
    try {
      lease = await o.limiter.acquire(c.tenantId, ask, { inFlight: o.concurrency, signal: signal ? AbortSignal.any([signal, waited]) : waited });
    } catch (err) {
      if (waited.aborted && !signal?.aborted) return { last: after, done: false };
      throw err;
    }
    // A lease is a short hold: no more than LEASE_ROUNDS messages for each slot it got. Given fewer slots than
    // asked (the tenant's other sends hold the rest), the grants beyond that go unused — they stay counted in the
    // minute, erring towards sending less — so the messages go out within the minute they were granted in, and a
    // lease is not held for long while other batches of the tenant wait for its slots.
    const usable = Math.min(lease.granted, lease.inFlight * LEASE_ROUNDS);
    // Granted fewer: the batch ends at the last usable grant (with the skipped ones before it).
    if (usable < active.length) batch = rows.filter((r) => r.n <= active[usable - 1].n);
  }
  // From here the lease is released whatever happens (a lease renews itself while held, so one never released
  // would keep its slots for as long as the process lives).
  try {
    if (lease) {
      // Who unsubscribed (or was erased) while the grant was awaited is skipped, not mailed.
      const still = new Set((await sequelize.query<{ id: string }>(`SELECT id FROM subscribers WHERE tenant_id = $1 AND id = ANY($2::uuid[])
        AND status = 'active' AND erased_at IS NULL`, { bind: [c.tenantId, active.map((r) => r.subscriber_id)], type: QueryTypes.SELECT })).map((r) => r.id));
      for (const r of batch) if (r.active && !still.has(r.subscriber_id)) r.active = false;
    }
    const sendable = batch.filter((r) => r.active);
    // What every message of the batch shares, read from the model once.
    const { replyTo } = c;
    const sender = { fromEmail: c.fromEmail, fromName: c.fromName };
    let down: unknown;
    // No more at once than the lease holds slots for (the tenant's maxConcurrent, shared with its other sends).
    const settled = await settleWithLimit(sendable, lease?.inFlight ?? 1, async (r): Promise<Outcome | null> => {
      // A lease that could not be renewed may have had its slots granted again: no more sends under it.
      if (down || lease?.lost.aborted) return null;
      const url = urls.get(r.n)!;
      const msg = messages.get(r.n)!;
      if ('error' in msg) return { n: r.n, status: 'failed', code: null, error: msg.error };
      try {
        const { messageId } = await o.email.send({
          to: r.email, from: senderOf(sender), ...(replyTo ? { replyTo } : {}), subject: msg.subject, html: msg.html, text: msg.text,
          headers: { ...unsubscribeHeaders(url, o.unsubscribeMailto), Precedence: 'bulk' }, idempotencyKey: recipientMessageKey(campaignId, r.subscriber_id),
        });
        return { n: r.n, status: 'sent', messageId };
      } catch (err) {
        const failure = recipientFailure(err);
        if (failure) return { n: r.n, status: 'failed', ...failure };
        down ??= err;
        return null;
      }
    });
    const outcomes: Outcome[] = batch.filter((r) => !r.active).map((r) => ({ n: r.n, status: 'skipped' as const, error: 'not an active subscriber since the snapshot' }));
    for (const s of settled) if (s.status === 'fulfilled' && s.value) outcomes.push(s.value);
    await recordOutcomes(sequelize, c, outcomes, down ? (down as Error).message ?? String(down) : null);
    if (down) throw new SmtpUnavailableError(`The SMTP server could not be reached: ${(down as Error).message ?? String(down)}`, { cause: down });
    // What the lost lease did not send is still pending: the next batch starts from the same place and picks it up.
    if (lease?.lost.aborted) return { last: after, done: false };
    const last = batch[batch.length - 1].n;
    return { last, done: (batch === rows && rows.length < o.batchSize) || (until !== null && last >= until) };
  } finally {
    await lease?.release();
  }
}

/**
 * A batch's outcomes and the campaign's counts in one statement. Only rows still `pending` change, so a batch
 * written twice (a retry after a crash) counts once. `down` marks the campaign retrying (the server unreachable).
 */
async function recordOutcomes(sequelize: Sequelize, c: Campaign, outcomes: Outcome[], down: string | null): Promise<void> {
  const col = <T>(f: (o: Outcome) => T) => outcomes.map(f);
  await sequelize.query(`WITH v AS (SELECT * FROM unnest($3::int[], $4::varchar[], $5::varchar[], $6::int[], $7::text[]) AS v(n, status, message_id, smtp_code, error)),
      done AS (UPDATE campaign_recipients r SET status = v.status, message_id = v.message_id, smtp_code = v.smtp_code, error = v.error,
          attempts = r.attempts + 1, updated_at = now()
        FROM v WHERE r.campaign_id = $2 AND r.n = v.n AND r.status = 'pending' RETURNING r.status)
    UPDATE campaigns SET sent = sent + (SELECT count(*) FROM done WHERE status = 'sent'), failed = failed + (SELECT count(*) FROM done WHERE status = 'failed'),
      skipped = skipped + (SELECT count(*) FROM done WHERE status = 'skipped'), retrying = $8::text IS NOT NULL,
      last_error = COALESCE($8::text, last_error), updated_at = now()
    WHERE tenant_id = $1 AND id = $2`, {
    bind: [c.tenantId, c.id, col((o) => o.n), col((o) => o.status), col((o) => (o.status === 'sent' ? o.messageId.slice(0, 300) : null)),
      col((o) => (o.status === 'failed' ? o.code : null)), col((o) => (o.status === 'sent' ? null : o.error.slice(0, 1000))), down],
  });
}

/**
 * The campaign's current rate (mails a minute): its counts since the last progress write, whichever lane writes, so
 * several lanes sending at once are measured together. Writes less than a second apart are skipped (lanes end their
 * chunks together); after a gap of RATE_WINDOW (a pause, a backoff, the run before) a write only starts a new window.
 */
export async function recordProgress(sequelize: Sequelize, c: Pick<Campaign, 'tenantId' | 'id'>): Promise<void> {
  await sequelize.query(`UPDATE campaigns SET
      rate_per_minute = CASE WHEN progress_at > clock_timestamp() - interval '${RATE_WINDOW_SECONDS} seconds'
        THEN (sent + failed + skipped - progress_count) * 60 / extract(epoch FROM clock_timestamp() - progress_at) END,
      progress_count = sent + failed + skipped, progress_at = clock_timestamp()
    WHERE tenant_id = $1 AND id = $2 AND (progress_at IS NULL OR progress_at <= clock_timestamp() - interval '1 second')`, { bind: [c.tenantId, c.id] });
}

const RATE_WINDOW_SECONDS = 15;
/** Messages a lease may carry per slot it holds (see sendBatch). At 10 slots: 500, the default batch. */
const LEASE_ROUNDS = 50;
