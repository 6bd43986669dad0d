// The delivery ledger (lib/notify/deliveries.ts) on its own: claims and outcomes in bulk, once per
// natural key, a sent delivery never touched again, attempts logged; and migration 0009 carrying the
// rows of the two ledgers it replaced.
import { randomUUID } from 'node:crypto';
import { QueryTypes } from 'sequelize';
import { createSequelize, Delivery, DeliveryAttempt } from '../../db';
import { migrate, migrator } from '../../db/migrate';
import { claimDeliveries, giveUpDeliveries, recordDeliveryOutcomes } from '../../lib/notify/deliveries';
import { buildTenant } from '../helpers/factories';
import { privateDatabase } from '../helpers/private-database';

const sequelize = createSequelize(process.env.DATABASE_URL!);
afterAll(() => sequelize.close());

const claimsFor = (tenantId: string, subjectId: string, n: number) => Array.from({ length: n }, (_, i) => ({
  key: `test:${subjectId}:${i}`, tenantId, channel: 'email' as const, recipient: `r${i}@example.com`, subjectType: 'campaign', subjectId,
}));

it('claims and records twelve thousand deliveries in bulk; a second claim answers only what was not sent', async () => {
  const tenant = await buildTenant();
  const subject = randomUUID();
  const claims = claimsFor(tenant.id, subject, 12_000);
  const first = await claimDeliveries(claims);
  expect(first.size).toBe(12_000);
  await recordDeliveryOutcomes([
    ...claims.slice(0, 7_000).map((c) => ({ key: c.key, providerId: `<${c.key}@docket>` })),
    ...claims.slice(7_000, 7_010).map((c) => ({ key: c.key, error: 'mailbox full' })),
  ]);
  // Claimed again (a retry): the sent ones are not to send; new rows are not created twice.
  const again = await claimDeliveries(claims);
  expect(again.size).toBe(5_000);
  expect(again.has(claims[6_999].key)).toBe(false);
  expect(again.has(claims[7_000].key)).toBe(true);
  const counts = await Delivery.count({ where: { subjectId: subject }, group: ['status'] }) as unknown as { status: string; count: number }[];
  expect(Object.fromEntries(counts.map((c) => [c.status, Number(c.count)]))).toEqual({ sent: 7_000, pending: 5_000 });
  const failed = (await Delivery.findByPk(claims[7_005].key))!;
  expect({ status: failed.status, attempts: failed.attempts, error: failed.error }).toEqual({ status: 'pending', attempts: 1, error: 'mailbox full' });
  const sent = (await Delivery.findByPk(claims[5].key))!;
  expect({ status: sent.status, attempts: sent.attempts, providerId: sent.providerId }).toEqual({ status: 'sent', attempts: 1, providerId: `<${claims[5].key}@docket>` });
  expect(sent.lastAttemptAt).toBeInstanceOf(Date);
});

it('never turns a sent delivery back, and logs only the attempts it recorded', async () => {
  const tenant = await buildTenant();
  const subject = randomUUID();
  const [a, b] = claimsFor(tenant.id, subject, 2);
  await claimDeliveries([a, b]);
  await recordDeliveryOutcomes([{ key: a.key, providerId: 'm-1', log: { attempt: 1, shownAs: 'Ada <r0@example.com>', detail: { trigger: 'offset:0' } } }]);
  // A late duplicate of the same send fails: it must not undo the success.
  await recordDeliveryOutcomes([{ key: a.key, error: 'timeout', log: { attempt: 2 } }, { key: b.key, error: 'refused', log: { attempt: 1, durationMs: 12 } }]);
  const row = (await Delivery.findByPk(a.key))!;
  expect({ status: row.status, attempts: row.attempts, error: row.error, providerId: row.providerId }).toEqual({ status: 'sent', attempts: 1, error: null, providerId: 'm-1' });
  const attempts = await DeliveryAttempt.findAll({ where: { subjectId: subject }, order: [['id', 'ASC']] });
  expect(attempts.map((x) => ({ key: x.deliveryKey, status: x.status, recipient: x.recipient, error: x.error, detail: x.detail, durationMs: x.durationMs, subjectType: x.subjectType })))
    .toEqual([
      { key: a.key, status: 'sent', recipient: 'Ada <r0@example.com>', error: null, detail: { trigger: 'offset:0' }, durationMs: null, subjectType: 'campaign' },
      { key: b.key, status: 'failed', recipient: 'r1@example.com', error: 'refused', detail: null, durationMs: 12, subjectType: 'campaign' },
    ]);
  // Given up: the unsent one ends failed (a dead letter), the sent one stays sent.
  await giveUpDeliveries([a.key, b.key], 'retries spent');
  expect((await Delivery.findAll({ where: { subjectId: subject }, order: [['key', 'ASC']] })).map((d) => d.status)).toEqual(['sent', 'failed']);
});

it('migration 0009 carries the rows of notification_deliveries and reminder_delivery_attempts into the ledger', async () => {
  // On a database of its own: reverting the shared one would pull tables from under the suites running beside this one
  // (and a down that refuses, as 0025's does while a flow without a template exists, would leave it half reverted).
  // The models follow the newest connection, so from here on they use it too.
  const own = await privateDatabase();
  const sequelize = own.sequelize;
  try {
  await migrate(sequelize);
  const tenant = await buildTenant();
  const reminderId = randomUUID();
  const umzug = migrator(sequelize);
  await umzug.down({ to: '0009_delivery_ledger' });
  try {
    await sequelize.query(`INSERT INTO reminders (id, tenant_id, subject, message, channels, recipients, recipient_users, recipient_emails, offsets, status, occurrence_count, state, state_version, workflow_id, created_at, updated_at)
      VALUES ($1, $2, 's', '', '{email}', '{}', '{}', '{}', '{0}', 'active', 0, '{}', 0, 'w', now(), now())`, { bind: [reminderId, tenant.id] });
    await sequelize.query(`INSERT INTO notification_deliveries (key, tenant_id, channel, recipient, subject_type, subject_id, status, attempts, error, provider_id, created_at, updated_at)
      VALUES ('old:1', $1, 'email', 'a@example.com', 'reminder', $2, 'sent', 2, NULL, 'm-9', now(), '2026-11-01T10:00:00Z')`, { bind: [tenant.id, reminderId] });
    await sequelize.query(`INSERT INTO reminder_delivery_attempts (tenant_id, reminder_id, delivery_key, occurrence_at, trigger, channel, recipient, attempt, status, error, at)
      VALUES ($1, $2, 'old:1', '2026-11-01T09:00:00Z', 'offset:60', 'email', 'a@example.com', 2, 'sent', NULL, '2026-11-01T10:00:00Z')`, { bind: [tenant.id, reminderId] });
  } finally {
    await umzug.up();
  }
  const d = (await Delivery.findByPk('old:1'))!;
  expect({ status: d.status, attempts: d.attempts, providerId: d.providerId, lastAttemptAt: d.lastAttemptAt?.toISOString() })
    .toEqual({ status: 'sent', attempts: 2, providerId: 'm-9', lastAttemptAt: '2026-11-01T10:00:00.000Z' });
  const [a] = await DeliveryAttempt.findAll({ where: { subjectType: 'reminder', subjectId: reminderId } });
  expect({ key: a.deliveryKey, attempt: a.attempt, detail: a.detail, at: a.at.toISOString() })
    .toEqual({ key: 'old:1', attempt: 2, detail: { occurrence: '2026-11-01T09:00:00.000Z', trigger: 'offset:60' }, at: '2026-11-01T10:00:00.000Z' });
  // New attempts continue the ids of the old log.
  const [{ next }] = await sequelize.query<{ next: string }>(`SELECT nextval(pg_get_serial_sequence('delivery_attempts', 'id')) AS next`, { type: QueryTypes.SELECT });
  expect(Number(next)).toBeGreaterThan(Number(a.id));
  } finally {
    await own.drop();
  }
});
