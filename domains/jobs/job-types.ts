// The registry of job types a schedule can run: name, description, and a JSON Schema of its
// parameters (served by the API) with a check (ajv) that refuses bad parameters before anything is scheduled.
import Ajv, { ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import { isSealed } from '../../lib/secrets';

export interface JobTypeInfo {
  name: string;
  description: string;
  /** JSON Schema (draft 7) of `params`. */
  parameters: { type: 'object'; additionalProperties: false; required: string[]; minProperties?: number; properties: Record<string, Record<string, unknown>> };
  /**
   * A permission a caller needs, besides `jobs.write`, to schedule or run this type: what the job does on the
   * tenant's behalf that `jobs.write` alone must not grant (deleting the audit log, or copies of subscribers' personal data).
   */
  permission?: string;
}

export class JobParamsError extends Error {
  override readonly name = 'JobParamsError';
}

/** How the API shows a secret param (an http job's header value), and what, sent back, keeps the stored one (secret-params.ts). */
export const REDACTED_PLACEHOLDER = '***';
/** An HTTP header name (a token, RFC 9110) and value (no line breaks, NULs or other control characters; Latin-1 at most). */
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
const HEADER_VALUE = '^[\\t\\x20-\\x7e\\x80-\\xff]*$';

export const JOB_TYPES: JobTypeInfo[] = [
  {
    name: 'audit.retention_purge',
    description: 'Deletes the tenant\'s audit events older than `olderThanDays`, in batches. Scheduling or running it also needs `audit.purge`.',
    permission: 'audit.purge',
    parameters: { type: 'object', additionalProperties: false, required: ['olderThanDays'], properties: { olderThanDays: { type: 'integer', minimum: 1, maximum: 36500 } } },
  },
  {
    name: 'housekeeping.expired_keys',
    description: 'Deletes idempotency keys older than `idempotencyHours` (default: IDEMPOTENCY_TTL_HOURS) and used one-click link tokens older than `usedLinkDays` (default 30), never one whose link could still be valid (links live 72 hours).',
    parameters: {
      type: 'object', additionalProperties: false, required: [],
      properties: { idempotencyHours: { type: 'integer', minimum: 1, maximum: 87600 }, usedLinkDays: { type: 'integer', minimum: 1, maximum: 3650 } },
    },
  },
  {
    name: 'files.orphan_purge',
    description: 'Deletes files a workflow stored whose owner no longer points at them (an audit export stored twice by a retry, a subscriber export that failed after storing its CSV, a document rendered after it was failed), older than `olderThanHours` (default 24), and their bytes once no file row uses them; also removes stored bytes no file of any tenant uses that no upload has claimed for `olderThanHours` (an upload that died half-way).',
    parameters: { type: 'object', additionalProperties: false, required: [], properties: { olderThanHours: { type: 'integer', minimum: 1, maximum: 87600 } } },
  },
  {
    name: 'audience.files_purge',
    description: 'Deletes subscriber exports (each with its CSV, as DELETE /v1/subscriber-exports/{id} does) that finished more than `exportsOlderThanDays` ago, and the uploaded source files (CSV/XLSX) of subscriber imports that ended more than `importFilesOlderThanDays` ago (as DELETE /v1/files/{id} does; the imports themselves, their counts and rejections stay, and can still be reverted). Give at least one of the two. A file an import still reads, or that a newer import used, is kept. Scheduling or running it also needs `audience.erase`.',
    permission: 'audience.erase',
    parameters: {
      type: 'object', additionalProperties: false, required: [], minProperties: 1,
      properties: { exportsOlderThanDays: { type: 'integer', minimum: 1, maximum: 3650 }, importFilesOlderThanDays: { type: 'integer', minimum: 1, maximum: 3650 } },
    },
  },
  {
    name: 'http',
    description: 'Calls a URL; a non-2xx answer fails the run (and is retried by the schedule\'s retry policy).',
    parameters: {
      type: 'object', additionalProperties: false, required: ['url'],
      properties: {
        url: { type: 'string', format: 'uri', pattern: '^https?://', maxLength: 2000 },
        method: { type: 'string', enum: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], default: 'POST' },
        headers: {
          type: 'object',
          description: `Sent with the request. Their values are kept sealed and shown as "${REDACTED_PLACEHOLDER}"; sending "${REDACTED_PLACEHOLDER}" as a header's value keeps the value stored for it.`,
          propertyNames: { type: 'string', maxLength: 200, pattern: HEADER_NAME },
          additionalProperties: { type: 'string', maxLength: 2000, pattern: HEADER_VALUE },
        },
        body: { description: 'Sent as JSON' },
        timeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 30 },
      },
    },
  },
];

const byName = new Map(JOB_TYPES.map((t) => [t.name, t]));

// One compiled validator per job type, built once: the registry's schemas are the single source of what
// a job's parameters may be (served as they are by GET /v1/job-types).
const ajv = addFormats(new Ajv({ strict: true }), ['uri']);
const validators = new Map(JOB_TYPES.map((t) => [t.name, ajv.compile(t.parameters)]));

export function jobType(name: string): JobTypeInfo | undefined {
  return byName.get(name);
}

/** `params.<path>: <what is wrong>` for the first error ajv found. */
function describe(name: string, e: ErrorObject): string {
  const path = ['params', ...e.instancePath.split('/').slice(1)];
  // Never the value itself: a header's value is a secret.
  if (e.propertyName !== undefined) return `${path.join('.')}: "${e.propertyName}" is not a valid HTTP header name`;
  if (e.keyword === 'pattern' && e.schemaPath.includes('/headers/')) return `${path.join('.')}: is not a valid HTTP header value (no line breaks or control characters, nothing above U+00FF)`;
  if (e.keyword === 'required') return `${[...path, (e.params as { missingProperty: string }).missingProperty].join('.')}: is required`;
  // Every parameter optional, but at least one needed (audience.files_purge): name them all.
  if (e.keyword === 'minProperties') return `${path.join('.')}: give at least one of ${Object.keys(byName.get(name)?.parameters.properties ?? {}).join(', ')}`;
  if (e.keyword === 'additionalProperties') return `${[...path, (e.params as { additionalProperty: string }).additionalProperty].join('.')}: is not a parameter of ${name}`;
  return `${path.join('.')}: ${e.message}`;
}

/**
 * Checks params against the type's JSON Schema; throws JobParamsError naming the offending path. A header value stored
 * sealed (longer than the value it holds) counts as the placeholder: its value was checked before it was sealed.
 */
export function checkJobParams(name: string, params: Record<string, unknown>): void {
  const validate = validators.get(name);
  if (!validate) throw new JobParamsError(`jobType: unknown job type "${name}" (known: ${JOB_TYPES.map((x) => x.name).join(', ')})`);
  const headers = params.headers;
  const checked = headers && typeof headers === 'object' && !Array.isArray(headers)
    ? { ...params, headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, typeof v === 'string' && isSealed(v) ? REDACTED_PLACEHOLDER : v])) }
    : params;
  if (!validate(checked)) throw new JobParamsError(describe(name, validate.errors![0]));
}
