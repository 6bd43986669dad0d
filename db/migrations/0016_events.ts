// The outbox of domain events (GET /v1/events, later the webhook dispatcher): one row per event, written in the
// transaction of the change it reports (lib/events.ts), so none is lost and none reports a change that rolled back.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q(`CREATE TABLE events (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- uuid v7: time-ordered, so (tenant_id, id) is the order events happened in and a reader's cursor.
    id uuid NOT NULL PRIMARY KEY,
    type varchar(100) NOT NULL,
    occurred_at timestamptz NOT NULL,
    subject_type varchar(100) NOT NULL,
    subject_id varchar(200) NOT NULL,
    data jsonb NOT NULL,
    -- The natural key of the change (its audit event key): a retried activity writes its event once.
    event_key varchar(400)
  )`);
  // A tenant's events in order (the list, a dispatcher reading on from its cursor); by type, and by subject.
  await q('CREATE INDEX events_tenant_id_id ON events (tenant_id, id)');
  await q('CREATE INDEX events_tenant_id_type_id ON events (tenant_id, type, id)');
  await q('CREATE INDEX events_tenant_id_subject_id ON events (tenant_id, subject_id, id)');
  await q('CREATE UNIQUE INDEX events_tenant_id_event_key ON events (tenant_id, event_key) WHERE event_key IS NOT NULL');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP TABLE IF EXISTS events');
}
