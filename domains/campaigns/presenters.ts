// Campaigns and their deliveries as the API answers them, with the send's stats (counts, current rate, ETA).
import type { Campaign, CampaignRecipient } from '../../db/models/campaigns';
import type { Schemas } from '../schemas';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

/** A rate older than this is not "current" (the send is paused, backing off, or between runs). */
const RATE_FRESH_MS = 15_000;

export function campaignStats(c: Campaign, now = Date.now()): Schemas['CampaignStats'] {
  const pending = c.audienceSize === null ? null : Math.max(0, c.audienceSize - c.sent - c.failed - c.skipped);
  const sending = (c.status === 'running' && !c.retrying);
  const rate = sending && c.ratePerMinute !== null && c.progressAt && now - c.progressAt.getTime() < RATE_FRESH_MS ? Math.round(c.ratePerMinute) : 0;
  return {
    audienceSize: c.audienceSize, sent: c.sent, failed: c.failed, skipped: c.skipped, pending,
    ratePerMinute: rate, etaSeconds: rate > 0 && pending !== null ? Math.ceil((pending / rate) * 60) : null,
  };
}

export const presentCampaign = (c: Campaign): Schemas['Campaign'] => ({
  id: c.id, name: c.name, subject: c.subject, fromEmail: c.fromEmail, fromName: c.fromName, replyTo: c.replyTo, html: c.html, text: c.text,
  audience: c.audience, status: c.status, retrying: c.retrying, lastError: c.retrying ? c.lastError : null, error: c.error ?? null,
  sendAt: iso(c.sendAt), timeZone: c.timeZone, version: c.version, stats: campaignStats(c), workflowId: c.workflowId,
  createdBy: c.createdBy, createdAt: c.createdAt.toISOString(), updatedAt: c.updatedAt.toISOString(), startedAt: iso(c.startedAt), finishedAt: iso(c.finishedAt),
});

export const presentDelivery = (r: CampaignRecipient): Schemas['CampaignDelivery'] => ({
  subscriberId: r.subscriberId, email: r.email, status: r.status, attempts: r.attempts, messageId: r.messageId, smtpCode: r.smtpCode,
  error: r.error, updatedAt: iso(r.updatedAt),
});
