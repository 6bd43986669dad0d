// Notification emails sent once per natural key through the delivery ledger (deliveries.ts): the one way the
// approval and job activities mail people, so a retried or crashed activity never sends a notice twice.
import { settleWithLimit } from '../batch';
import { claimDeliveries, recordDeliveryOutcomes } from './deliveries';
import { EmailRejectedError, type EmailSender } from './email';

/** One notice to one address; `render` runs only if the notice is still to send. */
export interface NoticeEmail {
  key: string;
  to: string;
  subjectType: string;
  subjectId: string;
  render: () => Promise<{ subject?: string; text?: string; html?: string }>;
}

export interface EmailOnceOptions {
  /** Emails in flight at once (default 8: a few more than the SMTP pool's connections keep it busy). */
  inFlight?: number;
  /** Run after each email, sent or not (an activity's heartbeat). */
  afterEach?: () => void;
  /**
   * Throw a refused address too, once nothing retryable failed (the caller gives up on it); otherwise a refusal is
   * recorded as failed and given up on here.
   */
  throwRefusals?: boolean;
}

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Claims every key in one statement, sends the notices not sent yet, records every outcome in one statement and
 * answers how many it tried. Then throws the first failure a retry can cure (the retry sends only what is not sent).
 */
export async function emailOnce(email: EmailSender, tenantId: string, notices: NoticeEmail[], opts: EmailOnceOptions = {}): Promise<number> {
  if (!notices.length) return 0;
  const unsent = await claimDeliveries(notices.map((n) => ({ key: n.key, tenantId, channel: 'email', recipient: n.to, subjectType: n.subjectType, subjectId: n.subjectId })));
  const toSend = notices.filter((n) => unsent.has(n.key));
  const settled = await settleWithLimit(toSend, opts.inFlight ?? 8, async (n) => {
    try {
      const { subject = '', text = '', html } = await n.render();
      return await email.send({ to: n.to, subject, text, ...(html ? { html } : {}), idempotencyKey: n.key });
    } finally {
      opts.afterEach?.();
    }
  });
  await recordDeliveryOutcomes(settled.map((r, i) => (r.status === 'fulfilled'
    ? { key: toSend[i].key, providerId: r.value.messageId }
    : { key: toSend[i].key, error: errorMessage(r.reason) })));
  const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  const retryable = failures.find((e) => !(e instanceof EmailRejectedError));
  if (retryable) throw retryable;
  if (opts.throwRefusals && failures.length) throw failures[0];
  return toSend.length;
}
