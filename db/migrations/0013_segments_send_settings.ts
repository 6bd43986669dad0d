// Segments (saved subscriber filters), each tenant's sending limits, and the shared state of the send limiter
// (lib/send-limiter.ts): sends granted per time slot and the leases of sends in flight.
import { QueryInterface } from 'sequelize';

/**
 * One grant, in one round trip: under the tenant's advisory lock, on Postgres's clock read after the lock, drop what no
 * window counts any more, read the settings, what was granted in the window and what is leased, and grant what fits.
 * VOLATILE: each statement sees what the previous lock holders committed. (Replaced by 0028; its `down` restores this.)
 */
export const SEND_ACQUIRE_0013 = `CREATE FUNCTION docket_send_acquire(p_tenant uuid, p_wanted integer, p_window_ms bigint, p_slot_ms bigint, p_lease_ms integer,
      p_default_per_window integer, p_default_concurrent integer, p_lease_id uuid)
    RETURNS TABLE (granted integer, now_ms bigint, per_window integer, sent integer, oldest_slot bigint, concurrent integer, in_use integer, next_expiry_ms bigint)
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
      v_at timestamptz;
      v_first bigint;
    BEGIN
      PERFORM pg_advisory_xact_lock(1397050948, hashtext(p_tenant::text));
      -- Not waiting for the WAL flush halves an acquire's cost; a Postgres crash may forget the last ~0.6 s of grants.
      PERFORM set_config('synchronous_commit', 'off', true);
      v_at := clock_timestamp();
      now_ms := floor(extract(epoch FROM v_at) * 1000)::bigint;
      -- The slot holding now - window overlaps the window: it is counted (so no window ever holds more).
      v_first := (now_ms - p_window_ms) / p_slot_ms;
      DELETE FROM send_rate_slots s WHERE s.tenant_id = p_tenant AND s.slot < v_first;
      DELETE FROM send_leases l WHERE l.tenant_id = p_tenant AND l.expires_at <= v_at;
      SELECT t.max_per_minute, t.max_concurrent INTO per_window, concurrent FROM tenant_send_settings t WHERE t.tenant_id = p_tenant;
      per_window := coalesce(per_window, p_default_per_window);
      concurrent := coalesce(concurrent, p_default_concurrent);
      SELECT coalesce(sum(s.sends), 0)::integer, min(s.slot) INTO sent, oldest_slot FROM send_rate_slots s WHERE s.tenant_id = p_tenant;
      SELECT coalesce(sum(l.slots), 0)::integer, floor(extract(epoch FROM min(l.expires_at)) * 1000)::bigint INTO in_use, next_expiry_ms
        FROM send_leases l WHERE l.tenant_id = p_tenant;
      granted := greatest(0, least(p_wanted, per_window - sent, concurrent - in_use));
      IF granted > 0 THEN
        INSERT INTO send_rate_slots AS s (tenant_id, slot, sends) VALUES (p_tenant, now_ms / p_slot_ms, granted)
          ON CONFLICT (tenant_id, slot) DO UPDATE SET sends = s.sends + EXCLUDED.sends;
        INSERT INTO send_leases (tenant_id, id, slots, expires_at) VALUES (p_tenant, p_lease_id, granted, v_at + p_lease_ms * interval '1 millisecond');
      END IF;
      RETURN NEXT;
    END $$`;

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

  await q(SEND_ACQUIRE_0013);
  await q(`CREATE FUNCTION docket_send_release(p_tenant uuid, p_lease_id uuid) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
      PERFORM set_config('synchronous_commit', 'off', true);
      DELETE FROM send_leases WHERE tenant_id = p_tenant AND id = p_lease_id;
    END $$`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP FUNCTION IF EXISTS docket_send_acquire(uuid, integer, bigint, bigint, integer, integer, integer, uuid)');
  await qi.sequelize.query('DROP FUNCTION IF EXISTS docket_send_release(uuid, uuid)');
  for (const t of ['send_leases', 'send_rate_slots', 'tenant_send_settings', 'segments']) await qi.sequelize.query(`DROP TABLE IF EXISTS ${t}`);
}
