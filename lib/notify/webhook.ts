// The webhook channel: a JSON POST signed with HMAC-SHA256 over `${timestamp}.${body}`, so a
// receiver can check that Docket sent it and that it is fresh (see README: verifying webhooks).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { outboundFetch } from './outbound';

export const SIGNATURE_HEADER = 'Docket-Signature';
export const DELIVERY_HEADER = 'Docket-Delivery';

export interface WebhookMessage {
  url: string;
  secret: string;
  body: unknown;
  /** The delivery's natural key: the same on every retry, so a receiver can drop duplicates. */
  deliveryId: string;
  timeoutMs?: number;
  /** Private, loopback and link-local destinations are refused unless true (see outbound.ts). */
  allowPrivateNetworks: boolean;
}

/**
 * The endpoint answered with a status that retrying will not change (a 4xx other than 408/429).
 * Its name is stable so a Temporal retry policy can list it in nonRetryableErrorTypes.
 */
export class WebhookRejectedError extends Error {
  override readonly name = 'WebhookRejectedError';
  constructor(readonly status: number) {
    super(`webhook endpoint refused the delivery with HTTP ${status}`);
  }
}

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** What a receiver does: recompute the HMAC and refuse stale timestamps (replays). */
export function verifyWebhook(secret: string, header: string, body: string, opts: { toleranceSeconds?: number; now?: number } = {}): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1) return false;
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  if (Math.abs(now - t) > (opts.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, t, body).split('v1=')[1], 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** What one POST got back: the status and the first KB of the answer (read, so the connection can be reused). */
export interface PostOutcome {
  status: number;
  excerpt: string;
}

export const RESPONSE_EXCERPT_BYTES = 1024;

/**
 * One JSON POST to a tenant-given URL (through the SSRF guard, outbound.ts) with the caller's headers; answers
 * whatever status came back, so each channel decides what counts as delivered.
 */
export async function postWebhook(url: string, body: string, headers: Record<string, string>,
  opts: { timeoutMs?: number; allowPrivateNetworks: boolean; signal?: AbortSignal }): Promise<PostOutcome> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 10_000);
  const res = await outboundFetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'Docket-Webhook/1', ...headers },
    body,
    signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
  }, opts.allowPrivateNetworks);
  const text = await res.text().catch(() => '');
  return { status: res.status, excerpt: Buffer.from(text).subarray(0, RESPONSE_EXCERPT_BYTES).toString('utf8') };
}

/** Whether retrying can change the answer: not for a 4xx other than 408/429. */
export const isRetryableStatus = (status: number) => !(status >= 400 && status < 500 && status !== 408 && status !== 429);

/** One attempt; resolves with the HTTP status on 2xx, throws otherwise (the caller's retry policy decides). */
export async function sendWebhook(msg: WebhookMessage, signal?: AbortSignal): Promise<{ status: number }> {
  const body = JSON.stringify(msg.body);
  const timestamp = Math.floor(Date.now() / 1000);
  const { status } = await postWebhook(msg.url, body, {
    [SIGNATURE_HEADER]: signWebhook(msg.secret, timestamp, body),
    [DELIVERY_HEADER]: msg.deliveryId,
  }, { timeoutMs: msg.timeoutMs, allowPrivateNetworks: msg.allowPrivateNetworks, signal });
  if (status >= 200 && status < 300) return { status };
  if (!isRetryableStatus(status)) throw new WebhookRejectedError(status);
  throw new Error(`webhook endpoint answered HTTP ${status}`);
}
