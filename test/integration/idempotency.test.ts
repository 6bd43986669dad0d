// Idempotency-Key under races, with keys that hold what Postgres' error detail cannot carry unambiguously (", ",
// quotes, backslashes): the loser of a race for a key is told the key is in use, or gets the winner's answer replayed —
// never a 500. Also: an expired key is claimed afresh.
import { randomUUID } from 'node:crypto';
import { QueryTypes, Transaction } from 'sequelize';
import { AuditEvent, IdempotencyKey } from '../../db';
import { startTestApp, TestApp } from '../helpers/app';
import { buildCaller } from '../helpers/factories';
import { waitFor } from '../helpers/wait';

let app: TestApp;
beforeAll(async () => { app = await startTestApp(); });
afterAll(() => app.close());

const ODD_KEYS = ['a, b', 'x, y, z', `q"uo'te\\back, slash`, 'Key (a)=(b), c'];
const body = { entityType: 'role' };

/** The row the API stores for `body` sent by `key` (its principal, request hash and answer), from a request with a throwaway key. */
async function storedScope(key: string, tenantId: string): Promise<IdempotencyKey> {
  const probe = `probe-${randomUUID()}`;
  await app.call('post', '/v1/audit-exports', key).set('Idempotency-Key', probe).send(body).expect(202);
  const row = await IdempotencyKey.findOne({ where: { tenantId, key: probe } });
  return row!;
}

/** Waits until a statement on idempotency_keys is waiting for a lock (the request's insert, behind `tx`'s row). */
async function insertIsWaiting(): Promise<void> {
  await waitFor(async () => {
    const [{ n }] = await IdempotencyKey.sequelize!.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%idempotency_keys%' AND pid <> pg_backend_pid()`,
      { type: QueryTypes.SELECT },
    );
    return n > 0;
  }, { what: 'the request to wait on the key\'s row', intervalMs: 50 });
}

it('the loser of a race for a key with ", ", quotes or backslashes is told it is in use, or gets the answer replayed: never a 500', async () => {
  const { key, tenant } = await buildCaller(['audit.*']);
  const probe = await storedScope(key, tenant.id);
  const { principal, requestHash } = probe;
  const sequelize = IdempotencyKey.sequelize!;
  for (const [i, idem] of ODD_KEYS.entries()) {
    // The winner's row, written but not committed: the request finds no row, then its insert waits on this one and
    // meets it once committed — what the second of two simultaneous requests does.
    const finished = i % 2 === 1;
    const tx: Transaction = await sequelize.transaction();
    let committed = false;
    try {
      await IdempotencyKey.create({
        tenantId: tenant.id, principal, key: idem, operationId: 'createAuditExport', requestHash,
        statusCode: finished ? 202 : null, responseHeaders: finished ? probe.responseHeaders : null, responseBody: finished ? probe.responseBody : null,
      }, { transaction: tx });
      const pending = app.call('post', '/v1/audit-exports', key).set('Idempotency-Key', idem).send(body).then((r) => r);
      await insertIsWaiting();
      await tx.commit();
      committed = true;
      const res = await pending;
      if (finished) {
        expect([idem, res.status, res.headers['idempotent-replayed'], res.headers.location, res.body]).toEqual([idem, 202, 'true', probe.responseHeaders!.location, probe.responseBody]);
      } else {
        expect([idem, res.status, res.body.code]).toEqual([idem, 409, 'IDEMPOTENCY_KEY_IN_USE']);
      }
    } finally {
      if (!committed) await tx.rollback();
    }
  }
  // Only the probe ran.
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'audit.export.requested' } })).toBe(1);
});

it('identical requests sent at once with such a key: one runs, the others are told it is in use or replay it', async () => {
  const { key, tenant } = await buildCaller(['audit.*']);
  for (const idem of ODD_KEYS) {
    const post = () => app.call('post', '/v1/audit-exports', key).set('Idempotency-Key', idem).send(body).then((r) => r);
    const answers = await Promise.all([post(), post(), post(), post()]);
    for (const r of answers) {
      expect([idem, r.status, r.status === 409 ? r.body.code : 'ok']).toEqual(r.status === 409 ? [idem, 409, 'IDEMPOTENCY_KEY_IN_USE'] : [idem, 202, 'ok']);
    }
    const ran = answers.filter((r) => r.status === 202 && r.headers['idempotent-replayed'] === undefined);
    expect([idem, ran.length]).toEqual([idem, 1]);
    // Once done, replayed; the key kept as sent; another body with it refused.
    const again = await post();
    expect([again.status, again.headers['idempotent-replayed'], again.body.id]).toEqual([202, 'true', ran[0].body.id]);
    expect(await IdempotencyKey.count({ where: { tenantId: tenant.id, key: idem } })).toBe(1);
    const other = await app.call('post', '/v1/audit-exports', key).set('Idempotency-Key', idem).send({ entityType: 'user' }).expect(409);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
  }
  expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'audit.export.requested' } })).toBe(ODD_KEYS.length);
});

it('a key older than IDEMPOTENCY_TTL_HOURS is claimed afresh, whatever it was used for', async () => {
  const { key, tenant } = await buildCaller(['audit.*']);
  const { principal } = await storedScope(key, tenant.id);
  const idem = 'old, "used" key';
  await IdempotencyKey.create({
    tenantId: tenant.id, principal, key: idem, operationId: 'createAuditExport', requestHash: 'another request',
    statusCode: 202, responseHeaders: {}, responseBody: { stale: true }, createdAt: new Date(Date.now() - 1000 * 3_600_000),
  });
  const res = await app.call('post', '/v1/audit-exports', key).set('Idempotency-Key', idem).send(body).expect(202);
  expect(res.headers['idempotent-replayed']).toBeUndefined();
  expect(res.body.stale).toBeUndefined();
  const again = await app.call('post', '/v1/audit-exports', key).set('Idempotency-Key', idem).send(body).expect(202);
  expect([again.headers['idempotent-replayed'], again.body.id]).toEqual(['true', res.body.id]);
});
