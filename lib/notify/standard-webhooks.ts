// Standard Webhooks (standardwebhooks.com) signing, through its reference library: `whsec_` secrets and the
// webhook-id / webhook-timestamp / webhook-signature headers, one `v1,<sig>` per secret (rotation overlap).
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { openSecret } from '../secrets';
import { postWebhook } from './webhook';

/** A new signing secret: 32 random bytes, as `whsec_<base64>`. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

/** The headers of one request: signed with every secret given (space-separated, as the spec allows). */
export function standardWebhookHeaders(secrets: string[], messageId: string, body: string, at = new Date()): Record<string, string> {
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(messageId, at, body)).join(' '),
  };
}

/**
 * An endpoint's secrets that sign now (sealed at rest): the current one, and the previous during a rotation's overlap.
 * A reminder's webhook (`reminderId` set) keeps the secret its creator chose, any string (`whsec_…` or not): its UTF-8
 * bytes are the key, as they were for the old `Docket-Signature` HMAC, so it is answered as `whsec_<base64 of them>`
 * and the receiver verifies with `new Webhook(secret, { format: 'raw' })`.
 */
export function activeSecrets(e: { secret: string; previousSecret: string | null; previousSecretExpiresAt: Date | null; reminderId?: string | null }, key: Buffer, now = new Date()): string[] {
  const previous = e.previousSecret && e.previousSecretExpiresAt && e.previousSecretExpiresAt > now ? [e.previousSecret] : [];
  const opened = [e.secret, ...previous].map((s) => openSecret(s, key));
  return e.reminderId ? opened.map((s) => `whsec_${Buffer.from(s, 'utf8').toString('base64')}`) : opened;
}

export interface StandardWebhookAttempt {
  delivered: boolean;
  statusCode: number | null;
  durationMs: number;
  /** The answer's first KB. */
  response: string | null;
  error: string | null;
}

/**
 * One signed POST of an event as `{type, timestamp, data}` with its id as `webhook-id`: what it got back, never
 * a throw (the caller decides what a failure means: retry it, or report it).
 */
export async function sendStandardWebhook(msg: {
  url: string; secrets: string[]; id: string; type: string; timestamp: Date; data: unknown;
  timeoutMs: number; allowPrivateNetworks: boolean; signal?: AbortSignal; now?: Date;
}): Promise<StandardWebhookAttempt> {
  const body = JSON.stringify({ type: msg.type, timestamp: msg.timestamp.toISOString(), data: msg.data });
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  try {
    const res = await postWebhook(msg.url, body, standardWebhookHeaders(msg.secrets, msg.id, body, msg.now), {
      timeoutMs: msg.timeoutMs, allowPrivateNetworks: msg.allowPrivateNetworks, signal: msg.signal,
    });
    const delivered = res.status >= 200 && res.status < 300;
    return { delivered, statusCode: res.status, durationMs: took(), response: res.excerpt, error: delivered ? null : `HTTP ${res.status}` };
  } catch (err) {
    return { delivered: false, statusCode: null, durationMs: took(), response: null, error: (err as Error).message.slice(0, 1000) };
  }
}
