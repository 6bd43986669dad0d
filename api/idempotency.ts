// Idempotency-Key for POSTs that start work: same key + same body → the first response again.
import { createHash } from 'node:crypto';
import Koa from 'koa';
import { QueryTypes } from 'sequelize';
import { IdempotencyKey } from '../db/models/idempotency';
import { ApiError } from '../lib/problems';

const REPLAYED_HEADERS = ['location', 'etag'];

/** How often a key whose row vanished or expired between our insert and our read is tried again before a 409. */
const CLAIM_ATTEMPTS = 5;

type Scope = { tenantId: string; principal: string; operationId: string; key: string; ttlHours: number };

/**
 * Claims the key: its row inserted (true), or left as another request wrote it (false). One statement, so two
 * requests racing for a key never fail on the unique violation (Sequelize's findOrCreate parses the violation's
 * detail by splitting on ", ", which a key containing ", " or quotes misreads: a 500). Values are bound, never spliced.
 */
async function claim(scope: Scope, requestHash: string): Promise<boolean> {
  const rows = await IdempotencyKey.sequelize!.query(
    `INSERT INTO idempotency_keys (tenant_id, principal, key, operation_id, request_hash, status_code, response_headers, response_body, created_at)
     VALUES ($1, $2, $3, $4, $5, NULL, NULL, NULL, $6)
     ON CONFLICT (tenant_id, principal, operation_id, key) DO NOTHING
     RETURNING 1 AS claimed`,
    { bind: [scope.tenantId, scope.principal, scope.key, scope.operationId, requestHash, new Date()], type: QueryTypes.SELECT },
  );
  return rows.length === 1;
}

export async function withIdempotency(ctx: Koa.Context, scope: Scope, run: () => Promise<void>): Promise<void> {
  const requestHash = createHash('sha256').update(`${ctx.path}\n${JSON.stringify(ctx.state.body ?? null)}`).digest('hex');
  // Per credential: two callers of one tenant who pick the same key never see each other's responses.
  const id = { tenantId: scope.tenantId, principal: scope.principal, key: scope.key, operationId: scope.operationId };
  for (let attempt = 1; !(await claim(scope, requestHash)); attempt++) {
    const row = await IdempotencyKey.findOne({ where: id });
    if (row) {
      const expiredBefore = new Date(Date.now() - scope.ttlHours * 3_600_000);
      if (row.createdAt.getTime() >= expiredBefore.getTime()) {
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
      // Expired: removed only while it still is (a request racing us may have claimed the key afresh), then claimed again.
      await IdempotencyKey.sequelize!.query(
        'DELETE FROM idempotency_keys WHERE tenant_id = $1 AND principal = $2 AND key = $3 AND operation_id = $4 AND created_at < $5',
        { bind: [scope.tenantId, scope.principal, scope.key, scope.operationId, expiredBefore] },
      );
    }
    // Gone (its request failed and let the key go) or expired: claimed again, a few times at most.
    if (attempt >= CLAIM_ATTEMPTS) {
      throw new ApiError(409, 'IDEMPOTENCY_KEY_IN_USE', 'A request with this Idempotency-Key is still being processed; retry shortly');
    }
  }
  try {
    await run();
  } catch (err) {
    // A failed attempt is not remembered: the client may retry with the same key.
    await IdempotencyKey.destroy({ where: id });
    throw err;
  }
  const headers: Record<string, string> = {};
  for (const h of REPLAYED_HEADERS) if (ctx.response.get(h)) headers[h] = ctx.response.get(h);
  await IdempotencyKey.update({ statusCode: ctx.status, responseHeaders: headers, responseBody: ctx.body as object }, { where: id });
}
