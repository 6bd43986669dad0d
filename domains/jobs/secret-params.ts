// An http job's header values are credentials for the service it calls (`Authorization: Bearer …`): stored sealed
// (lib/secrets.ts, as webhook secrets are) in its schedule's row and in the run's Temporal input, shown as "***" (the
// names kept) by the API and in audit events, and opened only by the activity that sends the request. Sent back,
// "***" keeps the value stored for that header, so a change to a schedule's params resends only the secrets it changes.
// Values stored before they were sealed still work (openSecret returns them as they are) until they are sealed: by the
// start reconciler, which seals them in the row and in the Temporal Schedule's action without changing anything else
// (seal-stored-headers.ts), or by the schedule's next change, whichever comes first.
import { isSealed, openSecret, sealSecret } from '../../lib/secrets';
import { JobParamsError, REDACTED_PLACEHOLDER } from './job-types';

export const REDACTED = REDACTED_PLACEHOLDER;

type Params = Record<string, unknown>;

/** The params of a job type that are secrets: the http job's headers (their values). */
function headersOf(jobType: string, params: Params | null | undefined): Record<string, unknown> | undefined {
  if (jobType !== 'http' || !params) return undefined;
  const h = params.headers;
  return h && typeof h === 'object' && !Array.isArray(h) ? (h as Record<string, unknown>) : undefined;
}

/** `params` with each header value (a string) mapped; the same object when the job has no headers. */
function mapHeaders(jobType: string, params: Params, f: (name: string, value: string) => string): Params {
  const headers = headersOf(jobType, params);
  if (!headers) return params;
  return { ...params, headers: Object.fromEntries(Object.entries(headers).map(([name, v]) => [name, typeof v === 'string' ? f(name, v) : v])) };
}

/** What the API shows and audit events record: each header's value as "***". */
export const redactJobParams = (jobType: string, params: Params): Params => mapHeaders(jobType, params, () => REDACTED);

/**
 * Params as a caller gave them, to be stored: each header value sealed; "***" stands for the value `stored` (the
 * schedule's params before the change) has for a header of that name (any case) — 422 when it has none.
 */
export function sealJobParams(jobType: string, given: Params, key: Buffer, stored?: { jobType: string; params: Params }): Params {
  const before = Object.entries((stored && headersOf(stored.jobType, stored.params)) ?? {});
  return mapHeaders(jobType, given, (name, value) => {
    if (value !== REDACTED) return sealSecret(value, key);
    const kept = before.find(([n]) => n === name) ?? before.find(([n]) => n.toLowerCase() === name.toLowerCase());
    if (!kept || typeof kept[1] !== 'string') {
      throw new JobParamsError(`params.headers.${name}: "${REDACTED}" keeps the value stored for this header, and ${stored ? 'the schedule has none' : 'a new job has none'}`);
    }
    return isSealed(kept[1]) ? kept[1] : sealSecret(kept[1], key);
  });
}

/** The names of the headers whose stored value is not sealed (stored before values were sealed); none for other job types. */
export const plainHeaderNames = (jobType: string, params: Params | null | undefined): string[] =>
  Object.entries(headersOf(jobType, params) ?? {}).filter(([, v]) => typeof v === 'string' && !isSealed(v)).map(([name]) => name);

/** Stored params kept as they are, with any header value stored before values were sealed now sealed. */
export const resealJobParams = (jobType: string, params: Params, key: Buffer): Params =>
  mapHeaders(jobType, params, (_name, value) => (isSealed(value) ? value : sealSecret(value, key)));

/**
 * The params the job runs with (in the activity only): header values opened. A value that cannot be opened (the
 * secrets key changed) fails the run naming the header, never showing the value.
 */
export const openJobParams = (jobType: string, params: Params, key: Buffer): Params =>
  mapHeaders(jobType, params, (name, value) => {
    try {
      return openSecret(value, key);
    } catch {
      throw new JobParamsError(`params.headers.${name}: its sealed value cannot be opened (was SECRETS_KEY or LINK_SIGNING_SECRET changed?); set the header again`);
    }
  });

/** The opened header values: what an answer that echoes them has replaced by "***" before it is recorded. */
export function secretValues(jobType: string, opened: Params): string[] {
  const values = new Set<string>();
  for (const v of Object.values(headersOf(jobType, opened) ?? {})) {
    if (typeof v !== 'string') continue;
    // The whole value, and the credentials after an auth scheme ("Bearer <token>"), if long enough not to be a common word.
    for (const s of [v.trim(), v.trim().replace(/^[A-Za-z][\w.-]*\s+/, '')]) if (s.length >= MIN_SCRUBBED) values.add(s);
  }
  // Longest first, so a value containing another is replaced whole.
  return [...values].sort((a, b) => b.length - a.length);
}

/** Shorter values (`Accept: json`) are not secrets worth mangling an answer for. */
const MIN_SCRUBBED = 8;

/** `text` with every occurrence of `secrets` replaced by "***". */
export function scrubSecrets(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join(REDACTED);
  return out;
}
