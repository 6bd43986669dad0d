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

/** The permission that reads subscribers' data: the addresses of a campaign's recipients are theirs (as for a test send). */
export const SUBSCRIBER_DATA_PERMISSION = 'audience.read';

const HIDDEN = '[address hidden]';
/** Anything shaped like an address (an SMTP server's reply often names the recipient: `<ada@example.com>: User unknown`). */
const ADDRESS_LIKE = /[^\s<>()[\]"',;:@]+@[^\s<>()[\]"',;:@]+/g;
/** `s` as a regular expression that matches it literally (in JavaScript, and in Postgres's regexp_replace). */
export const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The text without the recipient's address, nor anything else shaped like one. */
function withoutAddresses(text: string | null, email: string): string | null {
  if (!text) return text;
  return text.replace(new RegExp(escapeRegExp(email), 'gi'), HIDDEN).replace(ADDRESS_LIKE, HIDDEN);
}

/**
 * One recipient's delivery. Its address (`email`, and any address in the server's reply in `error`) only for a caller
 * who may read subscribers (`addresses`: holds SUBSCRIBER_DATA_PERMISSION); to anyone else `email` is null and
 * addresses in `error` are replaced: campaigns.read shows how a send went, not who is in the audience.
 */
export const presentDelivery = (r: CampaignRecipient, { addresses }: { addresses: boolean }): Schemas['CampaignDelivery'] => ({
  subscriberId: r.subscriberId, email: addresses ? r.email : null, status: r.status, attempts: r.attempts, messageId: r.messageId, smtpCode: r.smtpCode,
  error: addresses ? r.error : withoutAddresses(r.error, r.email), updatedAt: iso(r.updatedAt),
});
