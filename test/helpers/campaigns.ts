// Campaign test data: a list of n subscribers written in one statement each (a 20,000-recipient crash test
// builds its audience in a second), and a campaign to it through the API.
import { randomUUID } from 'node:crypto';
import type { Sequelize } from 'sequelize';
import type { TestApp } from './app';
import { verifiedSenderDomain } from './sender-domains';

/** The tenant's send limits (the defaults, 600 a minute and 10 at once, would make tests wait). */
export async function setSendLimits(sequelize: Sequelize, tenantId: string, maxPerMinute = 600_000, maxConcurrent = 500): Promise<void> {
  await sequelize.query(`INSERT INTO tenant_send_settings (tenant_id, max_per_minute, max_concurrent) VALUES ($1, $2, $3)
    ON CONFLICT (tenant_id) DO UPDATE SET max_per_minute = EXCLUDED.max_per_minute, max_concurrent = EXCLUDED.max_concurrent`, { bind: [tenantId, maxPerMinute, maxConcurrent] });
}

/**
 * A list with `n` active subscribers `<prefix>-<i>@example.test` (name "Sub <i>", attributes {i, plan}); answers its id
 * and the addresses. The tenant's send limits are lifted unless the test sets its own (`limits: false`), and BODY's
 * From domain is made a verified sender domain of the tenant, so it can send to the list.
 */
export async function seedList(sequelize: Sequelize, tenantId: string, n: number, prefix = `s${randomUUID().slice(0, 6)}`, limits = true): Promise<{ listId: string; emails: string[] }> {
  if (limits) await setSendLimits(sequelize, tenantId);
  await verifiedSenderDomain(sequelize, tenantId);
  const listId = randomUUID();
  await sequelize.query('INSERT INTO lists (tenant_id, id, name) VALUES ($1, $2, $3)', { bind: [tenantId, listId, `list ${prefix}`] });
  await sequelize.query(`WITH s AS (
      INSERT INTO subscribers (tenant_id, id, email, name, attributes)
      SELECT $1, gen_random_uuid(), $2 || '-' || i || '@example.test', 'Sub ' || i, jsonb_build_object('i', i, 'plan', CASE WHEN i % 2 = 0 THEN 'pro' ELSE 'free' END)
      FROM generate_series(1, $3::int) AS i RETURNING id)
    INSERT INTO list_members (tenant_id, list_id, subscriber_id) SELECT $1, $4, id FROM s`, { bind: [tenantId, prefix, n, listId] });
  return { listId, emails: Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}@example.test`) };
}

export const BODY = {
  name: 'Newsletter',
  subject: 'Hello {{ subscriber.name }}',
  fromEmail: 'news@acme.example',
  fromName: 'Acme News',
  html: '<p>Dear {{ subscriber.name }} ({{ subscriber.attributes.plan }})</p><a href="{{ unsubscribe_url }}">unsubscribe</a>',
  text: 'Dear {{ subscriber.name }}, plan {{ subscriber.attributes.plan }}. Unsubscribe: {{ unsubscribe_url }}',
};

export async function createCampaign(app: TestApp, key: string, body: Record<string, unknown>): Promise<string> {
  const res = await app.call('post', '/v1/campaigns', key).send({ ...BODY, ...body }).expect(201);
  return res.body.id as string;
}
