// Idempotency-Key for POSTs that start work: same key + same body → the first response again.
import { createHash } from 'node:crypto';
import Koa from 'koa';
import { IdempotencyKey } from '../db/models/idempotency';
import { ApiError } from '../lib/problems';

const REPLAYED_HEADERS = ['location', 'etag'];

export async function withIdempotency(
  ctx: Koa.Context,
  scope: { tenantId: string; principal: string; operationId: string; key: string; ttlHours: number },
  run: () => Promise<void>,
): Promise<void> {
  const requestHash = createHash('sha256').update(`${ctx.path}\n${JSON.stringify(ctx.state.body ?? null)}`).digest('hex');
  // Per credential: two callers of one tenant who pick the same key never see each other's responses.
  const id = { tenantId: scope.tenantId, principal: scope.principal, key: scope.key, operationId: scope.operationId };
  const [row, created] = await IdempotencyKey.findOrCreate({ where: id, defaults: { ...id, requestHash, statusCode: null, responseHeaders: null, responseBody: null } });
  if (!created) {
    const expired = row.createdAt.getTime() < Date.now() - scope.ttlHours * 3_600_000;
    if (expired) {
      await row.destroy();
      return withIdempotency(ctx, scope, run);
    }
    if (row.requestHash !== requestHash) {
      throw new ApiError(409, 'IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request body');
    }
    if (row.statusCode === null) {
      throw new ApiError(409, 'IDEMPOTENCY_KEY_IN_USE', 'A request with this Idempotency-Key is still being processed; retry shortly');
    }
    ctx.status = row.statusCode;
    for (const [k, v] of Object.entries(row.responseHeaders ?? {})) ctx.set(k, v);
    ctx.set('Idempotent-Replayed', 'true');
    ctx.body = row.responseBody;
    return;
  }
  try {
    await run();
  } catch (err) {
    // A failed attempt is not remembered: the client may retry with the same key.
    await row.destroy();
    throw err;
  }
  const headers: Record<string, string> = {};
  for (const h of REPLAYED_HEADERS) if (ctx.response.get(h)) headers[h] = ctx.response.get(h);
  await row.update({ statusCode: ctx.status, responseHeaders: headers, responseBody: ctx.body as object });
}
