// Docket's refusals, thrown by every layer that decides one (the API's edge, the domains' commands): a
// stable UPPER_SNAKE code, the HTTP status it answers with, and a detail for people. api/errors.ts renders
// them as problem+json; the codes are listed in openapi.yaml's Problem schema.

export interface FieldError {
  path: string;
  message: string;
  /** Where in a text (a template part) the error is. */
  line?: number;
  column?: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly extra: { errors?: FieldError[]; permission?: string; count?: number; headers?: Record<string, string> } = {},
  ) {
    super(detail);
  }
}

/** Seconds a client should wait before trying again after a 503. */
export const RETRY_AFTER_SECONDS = { dependency: 5, busy: 2 };

export const notFound = (what: string) => new ApiError(404, 'NOT_FOUND', `${what} was not found`);
/** The caller lacks `permission`: 403 with the permission it needs named in the body (`permission`). */
export const permissionDenied = (detail: string, permission: string) =>
  new ApiError(403, 'PERMISSION_DENIED', detail, { permission });
/** A dependency is down or busy: 503 with Retry-After, so clients back off instead of hammering it. */
export const serviceUnavailable = (detail: string, retryAfterSeconds = RETRY_AFTER_SECONDS.dependency) =>
  new ApiError(503, 'SERVICE_UNAVAILABLE', detail, { headers: { 'Retry-After': String(retryAfterSeconds) } });
export const validationFailed = (errors: FieldError[]) =>
  new ApiError(400, 'VALIDATION_FAILED', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });
