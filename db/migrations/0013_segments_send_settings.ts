// Segments (saved subscriber filters), each tenant's sending limits, and the shared state of the send limiter
// (lib/send-limiter.ts): sends granted per time slot and the leases of sends in flight.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);

  await q(`CREATE TABLE segments (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    name varchar(200) NOT NULL,
    description text NOT NULL DEFAULT '',
    -- {all: [...]} or {any: [...]}, validated by domains/audience/segments.ts before it is stored.
    rules jsonb NOT NULL,
    version integer NOT NULL DEFAULT 1,
    created_by varchar(200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
  )`);
  await q('CREATE UNIQUE INDEX segments_name ON segments (tenant_id, lower(name))');
  await q('CREATE INDEX segments_listing ON segments (tenant_id, name, id)');

  // No row: the defaults (lib/send-limiter.ts DEFAULT_SEND_SETTINGS).
  await q(`CREATE TABLE tenant_send_settings (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    max_per_minute integer NOT NULL CHECK (max_per_minute > 0),
    max_concurrent integer NOT NULL CHECK (max_concurrent > 0),
    updated_by varchar(200),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`);

  // Sends granted per tenant and time slot (slot = floor(epoch ms / slot length)); rows older than the window
  // are deleted by the next grant. Logged: a Postgres restart must not forget the last minute's sends.
  await q(`CREATE TABLE send_rate_slots (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    slot bigint NOT NULL,
    sends integer NOT NULL,
    PRIMARY KEY (tenant_id, slot)
  )`);
  // Sends in flight: a lease holds `slots` until released or until it expires (its holder died).
  await q(`CREATE TABLE send_leases (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    slots integer NOT NULL CHECK (slots > 0),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
  )`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  for (const t of ['send_leases', 'send_rate_slots', 'tenant_send_settings', 'segments']) await qi.sequelize.query(`DROP TABLE IF EXISTS ${t}`);
}
