// Campaign activities: the run's begin, the audience snapshot, send chunks for the batch kit's loop (each resumes
// from its heartbeated cursor; outcomes written per batch), pause/resume/cancel and the end with their audit
// events, and a test send.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Campaign } from '../db/models/campaigns';
import { Subscriber } from '../db/models/audience';
import { snapshotAudience } from '../domains/campaigns/audience';
import { assertVerifiedSender, type SenderDomainsMode } from '../domains/campaigns/sender-domains';
import { CampaignRenderLimitError, recordProgress, renderFor, senderOf, sendBatch, SmtpUnavailableError } from '../domains/campaigns/sending';
import { UnsubscribeLinks, unsubscribeHeaders } from '../domains/campaigns/unsubscribe';
import { TemplateRenderError } from '../domains/documents/templates';
import { recordAudit, type CommandAuthor } from '../lib/audit';
import { runChunk } from '../lib/batch';
import { EmailRejectedError, type EmailSender } from '../lib/notify/email';
import { ApiError } from '../lib/problems';
import { isStatementTimeout, setStatementBudget } from '../lib/statement-budget';
import { acquireOne, sharedSendLimiter, type SendLimiter } from '../lib/send-limiter';
import { TEST_SEND_WAIT_MS, type CampaignControl, type CampaignInput, type SendChunkReport, type SendPlan, type TestSendInput, type TestSendResult } from '../workflows/campaigns.api';

export interface CampaignActivityDeps {
  email: EmailSender;
  /** The campaigns' own pooled transport (as many connections as their concurrency); `email` if absent. */
  bulkEmail?: EmailSender;
  linkSecret: string;
  publicUrl: string;
  /** The tenants' send limits (maxPerMinute, maxConcurrent) shared by every worker (made on the models' connection if absent). */
  sendLimiter?: SendLimiter;
  campaignBatchSize?: number;
  campaignConcurrency?: number;
  /** How long one send chunk runs before it hands back to the workflow (its pause/cancel point). */
  campaignChunkMs?: number;
  /** Lanes a new send is split into, each sent by one chunk at a time (about one per campaign worker process). */
  campaignLanes?: number;
  /** statement_timeout of the audience snapshot's statements (default 4 minutes, under its activity's 5). */
  campaignSnapshotTimeoutMs?: number;
  campaignUnsubscribeMailto?: string;
  /** SENDER_DOMAINS: `verified` (the default) checks a send's From domain again when it starts; `any` does not. */
  senderDomainsMode?: SenderDomainsMode;
}

type Ids = Pick<CampaignInput, 'tenantId' | 'campaignId' | 'run'>;

const workflowIdOf = () => Context.current().info.workflowExecution?.workflowId ?? null;

async function campaignOf(ids: Pick<Ids, 'tenantId' | 'campaignId'>): Promise<Campaign> {
  const c = await Campaign.findOne({ where: { tenantId: ids.tenantId, id: ids.campaignId } });
  if (!c) throw ApplicationFailure.nonRetryable(`campaign ${ids.campaignId} not found`, 'CAMPAIGN_NOT_FOUND');
  return c;
}

export function createCampaignActivities(deps: CampaignActivityDeps) {
  const sequelize = () => Campaign.sequelize!;
  const email = deps.bulkEmail ?? deps.email;
  const chunkMs = deps.campaignChunkMs ?? 2_000;
  // Made on first use: building the activities (the worker's registration) needs no secret yet.
  let links: UnsubscribeLinks | undefined;
  const linksOf = () => (links ??= new UnsubscribeLinks(deps.linkSecret, deps.publicUrl));
  // The process's one limiter (sharedSendLimiter keeps it per pool), unless the caller gave one.
  const limiterOf = () => deps.sendLimiter ?? sharedSendLimiter(sequelize());
  const sendOptions = () => ({
    email, links: linksOf(), limiter: limiterOf(), batchSize: deps.campaignBatchSize ?? 500, concurrency: deps.campaignConcurrency ?? 10,
    unsubscribeMailto: deps.campaignUnsubscribeMailto, maxWaitMs: chunkMs,
  });

  return {
    /** The run's workflow is there: what the start reconciler checks (a run recorded and not begun). */
    async beginCampaignRun(input: Ids & { waiting: boolean }): Promise<void> {
      await Campaign.update({ runStartedAt: new Date() }, { where: { tenantId: input.tenantId, id: input.campaignId, run: input.run, runStartedAt: null } });
    },

    /**
     * Snapshots the audience (once: a retry, or a retry run, finds it taken) and marks the campaign running, with its
     * audit event; answers its size and the lanes to send it in. A campaign cancelled while it waited is left alone.
     */
    async snapshotCampaign(input: Ids): Promise<SendPlan> {
      const lanes = Math.max(1, deps.campaignLanes ?? 1);
      const timeoutMs = deps.campaignSnapshotTimeoutMs ?? 240_000;
      return sequelize().transaction(async (transaction) => {
        const c = await Campaign.findOne({ where: { tenantId: input.tenantId, id: input.campaignId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!c) throw ApplicationFailure.nonRetryable(`campaign ${input.campaignId} not found`, 'CAMPAIGN_NOT_FOUND');
        if (c.audienceSize !== null) return { audienceSize: c.audienceSize, lanes };
        let size: number;
        try {
          // Each statement of the snapshot (and of the rest of this transaction) gets at most `timeoutMs`: an audience
          // too expensive to snapshot fails the send rather than hold a worker connection past the activity's timeout,
          // with another attempt started beside it.
          await setStatementBudget(sequelize(), transaction, timeoutMs);
          size = await snapshotAudience(sequelize(), c.tenantId, c.id, c.audience, transaction);
          // A scheduled send was checked when it was scheduled; its domain may have been deleted since. Read FOR SHARE,
          // as at the API (a delete waits until the send is marked running), after the snapshot so that the row is not
          // held while the snapshot runs; a refusal rolls the snapshot back.
          await assertVerifiedSender({ config: { senderDomains: { mode: deps.senderDomainsMode ?? 'verified' } } }, c.tenantId, c.fromEmail, { transaction });
        } catch (err) {
          // A list or segment of the audience deleted since it was scheduled, the audience grown past its limit, or the
          // From domain no longer verified: the send fails with its code, nothing sent.
          if (err instanceof ApiError && err.status === 422) throw ApplicationFailure.nonRetryable(err.detail, err.code);
          // The same audience would take as long on another attempt.
          if (isStatementTimeout(err)) {
            throw ApplicationFailure.nonRetryable(`Snapshotting the audience took longer than ${timeoutMs} ms (CAMPAIGN_SNAPSHOT_TIMEOUT_MS); nothing was sent: narrow its segments' rules`, 'SNAPSHOT_TIMEOUT');
          }
          throw err;
        }
        const wasScheduled = c.status === 'scheduled';
        await c.update({ audienceSize: size, status: 'running', startedAt: new Date() }, { transaction });
        await recordAudit({
          tenantId: c.tenantId, actor: { type: 'system', id: null }, action: 'campaigns.campaign.started', entityType: 'campaign', entityId: c.id,
          after: { audienceSize: size, scheduledFor: wasScheduled ? c.sendAt?.toISOString() : undefined }, workflowId: workflowIdOf(), eventKey: `campaigns:${c.id}:started`,
        }, transaction);
        return { audienceSize: size, lanes };
      });
    },

    /**
     * Sends one lane's batches (recipients after the cursor, up to `until`) for about `campaignChunkMs`, from the
     * cursor the last attempt heartbeated (a retry after a crash) or the one the workflow passes. The SMTP server unreachable: what went out is recorded, the campaign marked
     * retrying, and the chunk reports `smtpDown` (the workflow backs off and calls again from the same cursor).
     */
    async sendCampaignChunk(input: Ids & { cursor: number | null; until?: number | null }): Promise<SendChunkReport> {
      const c = await campaignOf(input);
      const send = sendOptions();
      let good: number | null = input.cursor;
      try {
        const r = await runChunk<number>({
          from: input.cursor,
          maxMs: chunkMs,
          async page(cursor, signal) {
            const b = await sendBatch(sequelize(), c, { after: cursor ?? 0, until: input.until ?? null }, send, signal);
            good = b.last;
            return { cursor: b.last, done: b.done };
          },
          progress: async () => recordProgress(sequelize(), c),
        });
        return { cursor: r.cursor, done: r.done };
      } catch (err) {
        // The template's fault, the same on every attempt: the campaign fails with what went out recorded.
        if (err instanceof CampaignRenderLimitError) throw ApplicationFailure.nonRetryable(err.message, 'TEMPLATE_RENDER_LIMIT');
        if (!(err instanceof SmtpUnavailableError)) throw err;
        return { cursor: good, done: false, smtpDown: true };
      }
    },

    /** A pause, resume or cancel the workflow applied, with its audit event (once per command: `eventKey`). */
    async controlCampaign(input: Ids & { state: CampaignControl; by: CommandAuthor; eventKey: string }): Promise<void> {
      const status = input.state;
      await sequelize().transaction(async (transaction) => {
        const c = await Campaign.findOne({ where: { tenantId: input.tenantId, id: input.campaignId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!c) return;
        const before = c.status;
        await c.update({ status, retrying: false, ...(status === 'cancelled' ? { finishedAt: new Date() } : {}) }, { transaction });
        await recordAudit({
          tenantId: c.tenantId, actor: input.by.actor, requestId: input.by.requestId, workflowId: workflowIdOf(),
          action: status === 'paused' ? 'campaigns.campaign.paused' : status === 'running' ? 'campaigns.campaign.resumed' : 'campaigns.campaign.cancelled',
          entityType: 'campaign', entityId: c.id, before: { status: before }, after: { status, sent: c.sent, failed: c.failed, skipped: c.skipped },
          eventKey: `campaigns:${c.id}:control:${input.eventKey}`,
        }, transaction);
      });
    },

    /** The run's end (finished, failed or cancelled from Temporal) and its audit event, once per run. */
    async endCampaign(input: Ids & { status: 'finished' | 'cancelled' | 'failed'; by: CommandAuthor; error?: { code: string; message: string } }): Promise<void> {
      await sequelize().transaction(async (transaction) => {
        const c = await Campaign.findOne({ where: { tenantId: input.tenantId, id: input.campaignId }, transaction, lock: transaction.LOCK.UPDATE });
        if (!c || c.run !== input.run) return;
        await c.update({ status: input.status, retrying: false, finishedAt: new Date(), error: input.error ?? null, ratePerMinute: null }, { transaction });
        await recordAudit({
          tenantId: c.tenantId, actor: input.by.actor, requestId: input.by.requestId, workflowId: workflowIdOf(), action: `campaigns.campaign.${input.status}`,
          entityType: 'campaign', entityId: c.id, after: { run: c.run, audienceSize: c.audienceSize, sent: c.sent, failed: c.failed, skipped: c.skipped, error: input.error },
          eventKey: `campaigns:${c.id}:run:${input.run}:end`,
        }, transaction);
      });
    },

    /** A test send: rendered for the subscriber (or sample data) and sent to each address, outcomes answered, nothing recorded. */
    async sendCampaignTest(input: TestSendInput): Promise<TestSendResult> {
      const c = await campaignOf(input);
      const s = input.subscriberId ? await Subscriber.findOne({ where: { tenantId: input.tenantId, id: input.subscriberId } }) : null;
      const subscriber = s
        ? { name: s.name, email: s.email, attributes: s.attributes }
        : { name: input.sample?.name ?? null, email: input.sample?.email ?? input.emails[0], attributes: input.sample?.attributes ?? {} };
      // A test mail never carries a working link, also when rendered for a real subscriber: anyone the caller names
      // receives it, and one click would unsubscribe that subscriber. Its link opens a page that says it is not one.
      const url = `${deps.publicUrl.replace(/\/+$/, '')}/v1/unsubscribe/test`;
      let msg;
      try {
        msg = await renderFor(c, { subscriber, unsubscribe_url: url });
      } catch (err) {
        if (err instanceof TemplateRenderError) throw ApplicationFailure.nonRetryable(err.message, 'TEMPLATE_RENDER_ERROR');
        if (err instanceof CampaignRenderLimitError) throw ApplicationFailure.nonRetryable(err.message, 'TEMPLATE_RENDER_LIMIT');
        throw err;
      }
      const result: TestSendResult = { sent: [], failed: [] };
      // Test mails count against the tenant's send limit (per minute and in flight) as its campaigns' do: they go out
      // through the same relay, to any address, and would otherwise be a way around the limit. One at a time, each on a
      // grant of one taken just before it (so the budget goes only to mail that goes out), waiting TEST_SEND_WAIT_MS in
      // all (time spent sending does not count): an address that found no room by then is answered failed, not sent.
      let waitLeft = TEST_SEND_WAIT_MS;
      let limited = 0;
      // Once the server fails a message without refusing it (unreachable, a 4xx), the rest are not tried: each could take
      // as long again (connection and socket timeouts), past the activity's minute.
      let serverFailed: string | null = null;
      for (const to of input.emails) {
        if (serverFailed) {
          result.failed.push({ email: to, code: null, message: `Not tried: the SMTP server failed the message before it (${serverFailed})`.slice(0, 500) });
          continue;
        }
        const waitStart = Date.now();
        const lease = waitLeft > 0 ? await acquireOne(limiterOf(), input.tenantId, AbortSignal.timeout(waitLeft)) : null;
        waitLeft -= Date.now() - waitStart;
        if (!lease) {
          limited++;
          result.failed.push({ email: to, code: null, message: `No room in the tenant's send limit within ${TEST_SEND_WAIT_MS / 1000} s: not sent` });
          continue;
        }
        try {
          const sent = await email.send({
            to, from: senderOf(c), ...(c.replyTo ? { replyTo: c.replyTo } : {}), subject: msg.subject, html: msg.html, text: msg.text,
            headers: unsubscribeHeaders(url, deps.campaignUnsubscribeMailto), idempotencyKey: `campaign-test:${c.id}:${input.testId}:${to}`,
          });
          result.sent.push({ email: to, messageId: sent.messageId });
        } catch (err) {
          const code = err instanceof EmailRejectedError ? err.responseCode : null;
          const message = String((err as Error).message ?? err).slice(0, 500);
          if (code === null) serverFailed = message;
          result.failed.push({ email: to, code, message });
        } finally {
          // A release that fails leaves the slot to expire (leaseMs): the mail went out, so this attempt must not fail.
          await lease.release().catch(() => undefined);
        }
      }
      // No room for any of them: refused (429 at the API), nothing sent.
      if (limited === input.emails.length) throw ApplicationFailure.nonRetryable(`The tenant's send limit had no room within ${TEST_SEND_WAIT_MS / 1000} s (a send may be using it); nothing was sent`, 'RATE_LIMITED');
      // The server down for every address: retried (the workflow's policy), as nothing went out.
      if (!result.sent.length && result.failed.every((f) => f.code === null)) throw new Error(`no test message could be sent: ${result.failed[0]?.message}`);
      return result;
    },
  };
}

export type CampaignActivities = ReturnType<typeof createCampaignActivities>;
