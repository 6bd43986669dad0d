// Webhook endpoints (a tenant's receivers of domain events) and their deliveries: one row per (endpoint, event)
// — or per replay of an event — so the relay reading an event twice never delivers it twice. Attempts are
// rows of the shared ledger's delivery_attempts (delivery_key = the delivery's id).
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q(`CREATE TABLE webhook_endpoints (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url varchar(1000) NOT NULL,
    description varchar(500),
    -- Event types or prefixes (approval.*), or * for every type.
    event_types text[] NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason varchar(500),
    -- Sealed (lib/secrets.ts); the previous one signs too until previous_secret_expires_at (rotation).
    secret text NOT NULL,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
  )`);
  await q('CREATE INDEX webhook_endpoints_tenant_id_created_at ON webhook_endpoints (tenant_id, created_at, id)');
  await q(`CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id uuid NOT NULL,
    event_type varchar(100) NOT NULL,
    -- The event's first delivery: <endpoint>:<event>; a replay's: <endpoint>:<event>:<replay id>.
    delivery_key varchar(200) NOT NULL UNIQUE,
    status varchar(20) NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    -- The delivery's workflow was started (the relay starts those not yet started, so a crash loses none).
    started boolean NOT NULL DEFAULT false,
    last_attempt_at timestamptz,
    last_status_code integer,
    last_error text,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
  )`);
  await q('CREATE INDEX webhook_deliveries_endpoint_id_status_id ON webhook_deliveries (endpoint_id, status, id)');
  await q('CREATE INDEX webhook_deliveries_endpoint_id_id ON webhook_deliveries (endpoint_id, id)');
  await q('CREATE INDEX webhook_deliveries_unstarted ON webhook_deliveries (tenant_id) WHERE NOT started');
  // Where each tenant's relay has read the outbox up to (it re-reads a safety window behind it).
  await q(`CREATE TABLE webhook_relay_cursors (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    read_until timestamptz NOT NULL
  )`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP TABLE IF EXISTS webhook_relay_cursors, webhook_deliveries, webhook_endpoints');
}
