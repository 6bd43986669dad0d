// Outbound webhook POSTs through the SSRF guard (outbound.ts): the transport under Standard Webhooks signing
// (standard-webhooks.ts), which every webhook — an endpoint's and, since 0024, a reminder's — is sent with.
import { outboundFetch, readBodyCapped } from './outbound';

/** What one POST got back: the status and the first KB of the answer (only that much is read: readBodyCapped). */
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
  // Never the whole body: a receiver's answer can be a decompression bomb (readBodyCapped).
  const text = new TextDecoder().decode(await readBodyCapped(res, RESPONSE_EXCERPT_BYTES).catch(() => Buffer.alloc(0)));
  // Cut again as UTF-8: a malformed byte decodes to U+FFFD (3 bytes), so the excerpt stays within the KB.
  return { status: res.status, excerpt: Buffer.from(text).subarray(0, RESPONSE_EXCERPT_BYTES).toString('utf8') };
}
