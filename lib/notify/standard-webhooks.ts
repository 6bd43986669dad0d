// Standard Webhooks (standardwebhooks.com) signing, through its reference library: `whsec_` secrets and the
// webhook-id / webhook-timestamp / webhook-signature headers, one `v1,<sig>` per secret (rotation overlap).
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

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
