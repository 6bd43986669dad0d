// The registry of job types a schedule can run: name, description, and a JSON Schema of its
// parameters (served by the API) with a check that refuses bad parameters before anything is scheduled.

export interface JobTypeInfo {
  name: string;
  description: string;
  /** JSON Schema (draft 7 subset) of `params`. */
  parameters: { type: 'object'; additionalProperties: false; required: string[]; properties: Record<string, Record<string, unknown>> };
}

export class JobParamsError extends Error {
  override readonly name = 'JobParamsError';
}

export const JOB_TYPES: JobTypeInfo[] = [
  {
    name: 'audit.retention_purge',
    description: 'Deletes the tenant\'s audit events older than `olderThanDays`, in batches.',
    parameters: { type: 'object', additionalProperties: false, required: ['olderThanDays'], properties: { olderThanDays: { type: 'integer', minimum: 1, maximum: 36500 } } },
  },
  {
    name: 'housekeeping.expired_keys',
    description: 'Deletes idempotency keys older than `idempotencyHours` (default: IDEMPOTENCY_TTL_HOURS) and used one-click link tokens older than `usedLinkDays` (default 30).',
    parameters: {
      type: 'object', additionalProperties: false, required: [],
      properties: { idempotencyHours: { type: 'integer', minimum: 1, maximum: 87600 }, usedLinkDays: { type: 'integer', minimum: 1, maximum: 3650 } },
    },
  },
  {
    name: 'files.orphan_purge',
    description: 'Deletes files a workflow stored whose owner no longer points at them (e.g. an audit export stored twice by a retry), older than `olderThanHours` (default 24), and their bytes once no file row uses them; also removes stored bytes no file of any tenant uses that no upload has claimed for `olderThanHours` (an upload that died half-way).',
    parameters: { type: 'object', additionalProperties: false, required: [], properties: { olderThanHours: { type: 'integer', minimum: 1, maximum: 87600 } } },
  },
  {
    name: 'http',
    description: 'Calls a URL; a non-2xx answer fails the run (and is retried by the schedule\'s retry policy).',
    parameters: {
      type: 'object', additionalProperties: false, required: ['url'],
      properties: {
        url: { type: 'string', format: 'uri', pattern: '^https?://', maxLength: 2000 },
        method: { type: 'string', enum: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], default: 'POST' },
        headers: { type: 'object', additionalProperties: { type: 'string', maxLength: 2000 } },
        body: { description: 'Sent as JSON' },
        timeoutSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 30 },
      },
    },
  },
];

const byName = new Map(JOB_TYPES.map((t) => [t.name, t]));

export function jobType(name: string): JobTypeInfo | undefined {
  return byName.get(name);
}

/** Checks params against the type's schema (the subset the registry uses); throws JobParamsError with the path. */
export function checkJobParams(name: string, params: Record<string, unknown>): void {
  const t = byName.get(name);
  if (!t) throw new JobParamsError(`jobType: unknown job type "${name}" (known: ${JOB_TYPES.map((x) => x.name).join(', ')})`);
  const s = t.parameters;
  for (const key of s.required) if (params[key] === undefined) throw new JobParamsError(`params.${key}: is required`);
  for (const [key, value] of Object.entries(params)) {
    const p = s.properties[key];
    if (!p) throw new JobParamsError(`params.${key}: is not a parameter of ${name}`);
    if (p.type === 'integer' && !(Number.isInteger(value) && (value as number) >= (p.minimum as number) && (value as number) <= (p.maximum as number))) {
      throw new JobParamsError(`params.${key}: must be an integer from ${p.minimum} to ${p.maximum}`);
    }
    if (p.type === 'string') {
      if (typeof value !== 'string' || value.length > ((p.maxLength as number) ?? Infinity)) throw new JobParamsError(`params.${key}: must be a string`);
      if (p.enum && !(p.enum as string[]).includes(value)) throw new JobParamsError(`params.${key}: must be one of ${(p.enum as string[]).join(', ')}`);
      if (p.pattern && !new RegExp(p.pattern as string).test(value)) throw new JobParamsError(`params.${key}: must match ${p.pattern}`);
      if (p.format === 'uri' && !URL.canParse(value)) throw new JobParamsError(`params.${key}: must be a URL`);
    }
    if (p.type === 'object' && (typeof value !== 'object' || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string'))) {
      throw new JobParamsError(`params.${key}: must be an object of strings`);
    }
  }
}
