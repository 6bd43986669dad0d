// The campaign commands the API carries out: create, edit and delete drafts; send now or at a time; pause, resume and
// cancel a send (Updates to its workflow); put failed recipients back; a test send. Routes stay thin.
import { randomUUID } from 'node:crypto';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { DateTime, IANAZone } from 'luxon';
import { Transaction } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import { AuditEvent } from '../../db/models/audit';
import { Campaign, CampaignRecipient, type CampaignAudience } from '../../db/models/campaigns';
import { Subscriber } from '../../db/models/audience';
import { recordAudit } from '../../lib/audit';
import { ApiError, permissionDenied, serviceUnavailable, validationFailed } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import { recordStartIntent, StartBusinessWorkflow, startBusinessWorkflow, startOrUndo } from '../../lib/temporal';
import { executeCommand } from '../../lib/updates';
import type { campaignTestWorkflow, campaignWorkflow } from '../../workflows/campaigns';
import {
  CAMPAIGN_PATCHES, CAMPAIGN_TESTS_DOMAIN, CAMPAIGNS_DOMAIN, CAMPAIGNS_TASK_QUEUE, cancelCampaignUpdate, pauseCampaignUpdate, resumeCampaignUpdate, TEST_SEND_WAIT_MS, type TestSendResult,
} from '../../workflows/campaigns.api';
import { businessWorkflowId } from '../../workflows/search-attributes';
import { isEmail } from '../audience/subscribers';
import { auditBy, Caller, CommandDeps, commandAuthor, Precondition } from '../command';
import { TEMPLATE_LIMITS } from '../documents/templates';
import { templateWork, workPool } from '../work-pool';
import { audienceHasAnyone, audienceSql } from './audience';
import { SUBSCRIBER_DATA_PERMISSION } from './presenters';
import { assertVerifiedSender } from './sender-domains';
import { UnsubscribeLinks } from './unsubscribe';

export interface CampaignBody {
  name: string;
  subject: string;
  fromEmail: string;
  fromName?: string | null;
  replyTo?: string | null;
  html: string;
  text?: string;
  audience?: Partial<CampaignAudience>;
}

export const EDITABLE = ['draft', 'scheduled'] as const;
/** Where a campaign may be deleted: not while it waits for its time or sends. */
const DELETABLE = ['draft', 'finished', 'cancelled', 'failed'];
/** Latest send time accepted (Temporal timers and the date range the API takes). */
const LATEST_SEND_AT = Date.UTC(2100, 0, 1);

export const findCampaign = (tenantId: string, id: string, transaction?: Transaction): Promise<Campaign> =>
  findInTenant(Campaign, tenantId, id, 'Campaign', transaction ? { transaction, lock: transaction.LOCK.UPDATE } : {});

const invalidState = (c: Campaign, wanted: string) => new ApiError(409, 'INVALID_STATE', `The campaign is ${c.status}; ${wanted}`);

const audienceOf = (a: Partial<CampaignAudience> | undefined): CampaignAudience => ({
  listIds: [...new Set(a?.listIds ?? [])], segmentIds: [...new Set(a?.segmentIds ?? [])],
  excludeListIds: [...new Set(a?.excludeListIds ?? [])], excludeSegmentIds: [...new Set(a?.excludeSegmentIds ?? [])],
});

/** An audience as one comparable string (its lists and segments, in order). */
const audienceKey = (a: CampaignAudience) => JSON.stringify([a.listIds, a.segmentIds, a.excludeListIds, a.excludeSegmentIds]);

/** What the audit log keeps of a campaign's content (the bodies by size only: they can be a megabyte). */
const auditView = (c: Campaign) => ({
  name: c.name, subject: c.subject, fromEmail: c.fromEmail, fromName: c.fromName, replyTo: c.replyTo, audience: c.audience,
  htmlLength: c.html.length, textLength: c.text.length, version: c.version,
});

/**
 * Everything about a campaign's content that can be wrong, refused before anything is written: an address that is
 * not one (422 INVALID_ADDRESS), a From at a domain the tenant has not verified (422 SENDER_DOMAIN_UNVERIFIED; the
 * reply-to may be any address: replies go to it, nothing is sent as it), a part that does not parse (422
 * TEMPLATE_SYNTAX_ERROR at /requestBody/<part>, with line and column; checked on the work pool within the templates'
 * budget), a list or segment the tenant does not have.
 */
async function checkContent(deps: CommandDeps, tenantId: string, v: { fromEmail: string; replyTo: string | null; subject: string; html: string; text: string; audience: CampaignAudience }): Promise<void> {
  const bad = [['fromEmail', v.fromEmail], ['replyTo', v.replyTo]].filter(([, a]) => a !== null && !isEmail(a!.trim().toLowerCase()));
  if (bad.length) {
    throw new ApiError(422, 'INVALID_ADDRESS', bad.map(([f, a]) => `${f}: "${a}" is not an email address`).join('; '), { errors: bad.map(([f]) => ({ path: `/requestBody/${f}`, message: 'is not an email address' })) });
  }
  await assertVerifiedSender(deps, tenantId, v.fromEmail, { inBody: true });
  await templateWork(() => workPool().run('checkCampaignContent', [{ subject: v.subject, html: v.html, text: v.text }], TEMPLATE_LIMITS.budgetMs), (part) => `/requestBody/${part}`);
  await audienceSql(deps.sequelize, tenantId, v.audience, []);
}

export async function createCampaign(deps: CommandDeps, c: Caller, body: CampaignBody): Promise<Campaign> {
  const values = {
    name: body.name, subject: body.subject, fromEmail: body.fromEmail.trim(), fromName: body.fromName ?? null, replyTo: body.replyTo?.trim() ?? null,
    html: body.html, text: body.text ?? '', audience: audienceOf(body.audience),
  };
  await checkContent(deps, c.tenantId, values);
  return deps.sequelize.transaction(async (transaction) => {
    const campaign = await Campaign.create({ tenantId: c.tenantId, id: uuidv7(), ...values, createdBy: c.actor.id }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'campaigns.campaign.created', entityType: 'campaign', entityId: campaign.id, after: auditView(campaign) }, transaction);
    return campaign;
  });
}

/** Edits a draft or scheduled campaign (a new version; If-Match optional); 409 INVALID_STATE once it is sending. */
export async function updateCampaign(deps: CommandDeps, c: Caller, id: string, body: Partial<CampaignBody>, precondition?: Precondition): Promise<Campaign> {
  const current = await findCampaign(c.tenantId, id);
  const merged = {
    name: body.name ?? current.name, subject: body.subject ?? current.subject, fromEmail: body.fromEmail?.trim() ?? current.fromEmail,
    fromName: body.fromName === undefined ? current.fromName : body.fromName, replyTo: body.replyTo === undefined ? current.replyTo : body.replyTo?.trim() ?? null,
    html: body.html ?? current.html, text: body.text ?? current.text, audience: body.audience ? audienceOf(body.audience) : current.audience,
  };
  if ((EDITABLE as readonly string[]).includes(current.status)) await checkContent(deps, c.tenantId, merged);
  return deps.sequelize.transaction(async (transaction) => {
    const campaign = await findCampaign(c.tenantId, id, transaction);
    precondition?.(campaign.version);
    if (!(EDITABLE as readonly string[]).includes(campaign.status)) throw invalidState(campaign, 'only a draft or scheduled campaign can be edited');
    // Again under the lock, as a send does (FOR SHARE): a domain deleted while the content was checked refuses the edit
    // (a scheduled campaign would fail at its time instead of now).
    await assertVerifiedSender(deps, c.tenantId, merged.fromEmail, { transaction, inBody: true });
    const before = auditView(campaign);
    await campaign.update({ ...merged, version: campaign.version + 1 }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'campaigns.campaign.updated', entityType: 'campaign', entityId: id, before, after: auditView(campaign) }, transaction);
    return campaign;
  });
}

export async function deleteCampaign(deps: CommandDeps, c: Caller, id: string, precondition?: Precondition): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const campaign = await findCampaign(c.tenantId, id, transaction);
    precondition?.(campaign.version);
    if (!DELETABLE.includes(campaign.status)) throw invalidState(campaign, 'cancel it before deleting it');
    await campaign.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'campaigns.campaign.deleted', entityType: 'campaign', entityId: id, before: { ...auditView(campaign), status: campaign.status, sent: campaign.sent } }, transaction);
  });
}

/** `sendAt` read in `timeZone` (a wall-clock time there, or an instant with its own offset); null: now. */
export function sendTime(body: { sendAt?: string; timeZone?: string }, now = Date.now()): Date | null {
  if (body.timeZone !== undefined && !IANAZone.isValidZone(body.timeZone)) throw validationFailed([{ path: '/requestBody/timeZone', message: `"${body.timeZone}" is not an IANA time zone` }]);
  if (body.sendAt === undefined) return null;
  const at = DateTime.fromISO(body.sendAt, { zone: body.timeZone ?? 'UTC' });
  if (!at.isValid) throw validationFailed([{ path: '/requestBody/sendAt', message: 'is not an ISO 8601 date-time' }]);
  if (at.toMillis() <= now) throw new ApiError(422, 'TIME_IN_PAST', `sendAt ${body.sendAt}${body.timeZone ? ` in ${body.timeZone}` : ''} (${at.toUTC().toISO()}) is in the past; leave it out to send now`);
  if (at.toMillis() >= LATEST_SEND_AT) throw validationFailed([{ path: '/requestBody/sendAt', message: 'must be before 2100' }]);
  return at.toJSDate();
}

function runStart(c: Caller, campaign: Campaign, run: number, sendAt: Date | null): StartBusinessWorkflow<typeof campaignWorkflow> {
  return {
    workflowType: 'campaignWorkflow', taskQueue: CAMPAIGNS_TASK_QUEUE, domain: CAMPAIGNS_DOMAIN, tenantId: c.tenantId, entityType: 'campaign', entityId: campaign.id,
    initialStatus: sendAt ? 'scheduled' : 'running',
    args: [{ tenantId: c.tenantId, campaignId: campaign.id, run, by: commandAuthor(c), ...(sendAt ? { sendAt: sendAt.toISOString() } : {}), patches: CAMPAIGN_PATCHES }],
  };
}

/**
 * Records a new run of the campaign with its audit event and start intent (in `transaction`), then starts its
 * workflow; a start Temporal refuses takes the run back (`undo`) and answers 503.
 */
async function startRun(deps: CommandDeps, start: StartBusinessWorkflow<typeof campaignWorkflow>, eventKey: string, undo: (transaction: Transaction) => Promise<void>): Promise<void> {
  await startOrUndo(
    () => startBusinessWorkflow(deps.temporal.client, start),
    () => deps.sequelize.transaction(async (transaction) => {
      await undo(transaction);
      await AuditEvent.destroy({ where: { eventKey }, transaction });
    }),
  );
  deps.metrics.workflowStarts.inc({ workflow_type: 'campaignWorkflow' });
}

/**
 * Sends a draft now, or schedules it for `sendAt` (in `timeZone`): 422 TIME_IN_PAST, 422 EMPTY_AUDIENCE when nobody
 * would receive it today, 422 AUDIENCE_TOO_COMPLEX, 422 SEGMENT_TOO_EXPENSIVE when checking that takes longer than a
 * segment preview may, 429 while another preview or audience check of the tenant runs, 409 INVALID_STATE unless it
 * is a draft. Starts `campaigns:<tenant>:<id>`.
 */
export async function sendCampaign(deps: CommandDeps, c: Caller, id: string, body: { sendAt?: string; timeZone?: string }, precondition?: Precondition): Promise<Campaign> {
  const sendAt = sendTime(body);
  let start!: StartBusinessWorkflow<typeof campaignWorkflow>;
  let eventKey = '';
  // The audience check runs before the campaign row is locked, in its own transaction: its cost depends on the
  // segments' rules, so it runs as a segment preview does — under the preview's budget (422 SEGMENT_TOO_EXPENSIVE)
  // and the tenant's one-at-a-time lock (429) — and holding the row FOR UPDATE meanwhile would let every edit or send
  // of this campaign wait on it with a pooled connection each. The row is then locked for a short transaction that
  // checks nothing changed since: its state, If-Match, and the audience (edited meanwhile: 409, send it again); its
  // lists and segments are read again there FOR SHARE (cheap, no subscriber scanned), so a delete still waits for
  // the send and then refuses.
  const checked = await findCampaign(c.tenantId, id);
  precondition?.(checked.version);
  if (checked.status !== 'draft') throw invalidState(checked, 'only a draft can be sent or scheduled');
  // Its sender domain may have been deleted since the draft was saved.
  await assertVerifiedSender(deps, c.tenantId, checked.fromEmail);
  if (!(await audienceHasAnyone(deps.sequelize, c.tenantId, checked.audience, { budgetMs: deps.config.segments.previewBudgetMs }))) {
    throw new ApiError(422, 'EMPTY_AUDIENCE', 'Nobody is in this campaign\'s audience: its lists and segments have no active subscriber outside the exclusions');
  }
  const campaign = await deps.sequelize.transaction(async (transaction) => {
    const campaign = await findCampaign(c.tenantId, id, transaction);
    precondition?.(campaign.version);
    if (campaign.status !== 'draft') throw invalidState(campaign, 'only a draft can be sent or scheduled');
    if (audienceKey(campaign.audience) !== audienceKey(checked.audience)) {
      throw new ApiError(409, 'INVALID_STATE', 'The campaign\'s audience was edited while it was being checked; send it again');
    }
    await audienceSql(deps.sequelize, c.tenantId, campaign.audience, [], transaction);
    // Again under the lock (FOR SHARE: a delete of the domain waits for this send to be recorded, then goes on).
    await assertVerifiedSender(deps, c.tenantId, campaign.fromEmail, { transaction });
    const run = campaign.run + 1;
    start = runStart(c, campaign, run, sendAt);
    eventKey = `campaigns:${id}:run:${run}:requested`;
    await campaign.update({
      status: sendAt ? 'scheduled' : 'running', sendAt, timeZone: body.timeZone ?? null, run, runStartedAt: null,
      workflowId: businessWorkflowId(start), error: null, lastError: null,
    }, { transaction });
    await recordAudit({
      ...auditBy(c), action: sendAt ? 'campaigns.campaign.scheduled' : 'campaigns.campaign.send_requested', entityType: 'campaign', entityId: id,
      workflowId: campaign.workflowId, after: sendAt ? { sendAt: sendAt.toISOString(), timeZone: body.timeZone ?? null } : {}, eventKey,
    }, transaction);
    await recordStartIntent(start, transaction);
    return campaign;
  });
  await startRun(deps, start, eventKey, async (transaction) => {
    await Campaign.update({ status: 'draft', sendAt: null, timeZone: null, run: campaign.run - 1 }, { where: { tenantId: c.tenantId, id, run: campaign.run }, transaction });
  });
  return campaign.reload();
}

/**
 * Puts a finished campaign's failed recipients back to be sent and starts a new run of its workflow, which sends
 * them (same Message-IDs as their first attempt); 409 INVALID_STATE unless it finished with failures.
 */
export async function retryFailed(deps: CommandDeps, c: Caller, id: string): Promise<{ campaign: Campaign; requeued: number }> {
  let start!: StartBusinessWorkflow<typeof campaignWorkflow>;
  let eventKey = '';
  const { campaign, requeued } = await deps.sequelize.transaction(async (transaction) => {
    const campaign = await findCampaign(c.tenantId, id, transaction);
    if (campaign.status !== 'finished') throw invalidState(campaign, 'only a finished campaign\'s failed recipients can be retried');
    await assertVerifiedSender(deps, c.tenantId, campaign.fromEmail, { transaction });
    // Their error and SMTP code stay until the new attempt writes its own (and an undone retry finds them).
    const [requeued] = await CampaignRecipient.update({ status: 'pending' }, { where: { campaignId: id, status: 'failed' }, transaction });
    if (!requeued) throw invalidState(campaign, 'no recipient failed');
    const run = campaign.run + 1;
    start = runStart(c, campaign, run, null);
    eventKey = `campaigns:${id}:run:${run}:requested`;
    // The rate's window restarts with the run: its counts now leave out the requeued, so the last run's progress
    // mark would make the first rate of this one negative.
    await campaign.update({ status: 'running', run, runStartedAt: null, failed: campaign.failed - requeued, finishedAt: null, error: null, ratePerMinute: null, progressAt: null }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'campaigns.campaign.retry_requested', entityType: 'campaign', entityId: id, workflowId: campaign.workflowId, after: { requeued, run }, eventKey }, transaction);
    await recordStartIntent(start, transaction);
    return { campaign, requeued };
  });
  await startRun(deps, start, eventKey, async (transaction) => {
    const [back] = await CampaignRecipient.update({ status: 'failed' }, { where: { campaignId: id, status: 'pending' }, transaction });
    await Campaign.update({ status: 'finished', run: campaign.run - 1, failed: campaign.failed + back }, { where: { tenantId: c.tenantId, id, run: campaign.run }, transaction });
  });
  return { campaign: await campaign.reload(), requeued };
}

const COMMANDS = { pause: pauseCampaignUpdate, resume: resumeCampaignUpdate, cancel: cancelCampaignUpdate } as const;
const ALLOWED: Record<keyof typeof COMMANDS, { from: string[]; wanted: string }> = {
  pause: { from: ['running'], wanted: 'only a running campaign can be paused' },
  resume: { from: ['paused'], wanted: 'only a paused campaign can be resumed' },
  cancel: { from: ['scheduled', 'running', 'paused'], wanted: 'only a scheduled, running or paused campaign can be cancelled' },
};

/**
 * Pause, resume or cancel: an Update to the campaign's workflow, answered once the change is written (after a cancel,
 * the counts are final). Refused with 409 INVALID_STATE — by the read model at once, or by the workflow's validator.
 */
export async function controlCampaign(deps: CommandDeps, c: Caller, id: string, command: keyof typeof COMMANDS): Promise<Campaign> {
  const campaign = await findCampaign(c.tenantId, id);
  const rule = ALLOWED[command];
  if (!rule.from.includes(campaign.status) || !campaign.workflowId) throw invalidState(campaign, rule.wanted);
  const refused = (detail: string) => new ApiError(409, 'INVALID_STATE', detail);
  try {
    await executeCommand(deps.temporal.client.workflow.getHandle(campaign.workflowId), COMMANDS[command], [{ by: commandAuthor(c) }], {
      statuses: { BATCH_FINISHED: 409, BATCH_PAUSED: 409, BATCH_NOT_PAUSED: 409, INVALID_STATE: 409 },
      closed: () => refused('The campaign has ended'),
    });
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      await campaign.reload();
      throw refused(`The campaign is ${campaign.status}: ${err.detail}`);
    }
    throw err;
  }
  return campaign.reload();
}

export interface TestSendBody {
  emails: string[];
  subscriberId?: string;
  sample?: { name?: string | null; email?: string; attributes?: Record<string, unknown> };
}

/**
 * Sends the campaign's current content to up to 10 addresses, rendered for one of the tenant's subscribers or sample
 * data, through the campaigns' worker (a short workflow); answers what went out. Nothing is recorded as a delivery.
 */
export async function testSend(deps: CommandDeps, c: Caller, id: string, body: TestSendBody): Promise<TestSendResult> {
  const campaign = await findCampaign(c.tenantId, id);
  // A test mail goes out From the campaign's address as much as the send does.
  await assertVerifiedSender(deps, c.tenantId, campaign.fromEmail);
  const bad = body.emails.map((e, i) => ({ e, i })).filter(({ e }) => !isEmail(e.trim().toLowerCase()));
  if (bad.length) throw new ApiError(422, 'INVALID_ADDRESS', `Not email addresses: ${bad.map((b) => b.e).join(', ')}`, { errors: bad.map((b) => ({ path: `/requestBody/emails/${b.i}`, message: 'is not an email address' })) });
  if (body.subscriberId) {
    // The mail shows the subscriber's data (merge fields) to whoever it is sent to: only for a caller who may read it.
    if (!c.permissions.has(SUBSCRIBER_DATA_PERMISSION)) {
      throw permissionDenied("A test send for a subscriber needs the permission 'audience.read' (or send it with sample data)", 'audience.read');
    }
    await findInTenant(Subscriber, c.tenantId, body.subscriberId, 'Subscriber');
  }
  try {
    return await deps.temporal.client.workflow.execute<typeof campaignTestWorkflow>('campaignTestWorkflow', {
      taskQueue: CAMPAIGNS_TASK_QUEUE, workflowId: businessWorkflowId({ domain: CAMPAIGN_TESTS_DOMAIN, tenantId: c.tenantId, entityId: randomUUID() }),
      args: [{ tenantId: c.tenantId, campaignId: campaign.id, testId: randomUUID(), emails: [...new Set(body.emails.map((e) => e.trim()))], subscriberId: body.subscriberId, sample: body.sample }],
      workflowExecutionTimeout: '1 minute',
    });
  } catch (err) {
    const cause = err instanceof WorkflowFailedError && err.cause instanceof ActivityFailure ? err.cause.cause : undefined;
    if (cause instanceof ApplicationFailure && (cause.type === 'TEMPLATE_RENDER_ERROR' || cause.type === 'TEMPLATE_RENDER_LIMIT')) throw new ApiError(422, cause.type, cause.message);
    if (cause instanceof ApplicationFailure && cause.type === 'RATE_LIMITED') throw new ApiError(429, 'RATE_LIMITED', cause.message, { headers: { 'Retry-After': String(TEST_SEND_WAIT_MS / 1000) } });
    if (err instanceof WorkflowFailedError) throw serviceUnavailable('The test message could not be sent within a minute (no campaigns worker, or the SMTP server unreachable); try again', 30);
    throw err;
  }
}

export type UnsubscribeLink = { campaignId: string; campaign: Campaign | null; subscriber: Subscriber | null } | { invalid: true };

/**
 * What a one-click link names: its campaign and subscriber (either null if deleted since), or `invalid` (tampered,
 * unknown). A deleted campaign does not take its links with it: mail already received must still unsubscribe.
 */
export async function openUnsubscribe(deps: CommandDeps, token: string, beforeLookup?: () => void): Promise<UnsubscribeLink> {
  const claims = new UnsubscribeLinks(deps.config.linkSecret, deps.config.publicUrl).verify(token);
  if (!claims) return { invalid: true };
  beforeLookup?.();
  const [campaign, subscriber] = await Promise.all([
    Campaign.findOne({ where: { tenantId: claims.tenantId, id: claims.campaignId } }),
    Subscriber.findOne({ where: { tenantId: claims.tenantId, id: claims.subscriberId } }),
  ]);
  return { campaignId: claims.campaignId, campaign, subscriber };
}

/**
 * The campaign's subject for the unsubscribe page, only where it is plain text. The page needs no login, so it renders
 * nothing: a templated subject rendered there would let anyone holding one link spend the shared template pool's time
 * (up to the render limit per request) on a template its tenant wrote.
 */
export function plainSubject(link: Exclude<UnsubscribeLink, { invalid: true }>): string | null {
  const subject = link.campaign?.subject;
  return subject && !/\{[{%]/.test(subject) ? subject : null;
}

/**
 * Unsubscribes the link's subscriber (no login: the signed link is the credential), audited with the campaign it came
 * from; a second use changes nothing. Recipients of running campaigns not yet mailed are then skipped.
 */
export async function unsubscribeByLink(deps: CommandDeps, link: Exclude<UnsubscribeLink, { invalid: true }>): Promise<boolean> {
  if (!link.subscriber) return false;
  const { campaignId, subscriber } = link;
  return deps.sequelize.transaction(async (transaction) => {
    const [changed] = await Subscriber.update({ status: 'unsubscribed' }, { where: { tenantId: subscriber.tenantId, id: subscriber.id, status: 'active' }, transaction });
    if (!changed) return false;
    await recordAudit({
      tenantId: subscriber.tenantId, actor: { type: 'system', id: null }, action: 'audience.subscriber.unsubscribed', entityType: 'subscriber', entityId: subscriber.id,
      before: { status: 'active' }, after: { status: 'unsubscribed', campaignId, via: 'one-click link' },
    }, transaction);
    return true;
  });
}
