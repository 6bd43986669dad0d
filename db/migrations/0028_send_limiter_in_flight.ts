// The send limiter's lease holds the messages a holder has in flight at once, not every message it was granted:
// maxConcurrent is "messages in flight" (openapi.yaml), and a campaign batch of 500 sends 10 at a time. Counting
// the whole batch let one lane's batch take a tenant's every slot, so lanes on several workers sent by turns.
import { QueryInterface } from 'sequelize';
import { SEND_ACQUIRE_0013 } from './0013_segments_send_settings';

/** This migration's docket_send_acquire (0030's down restores it). */
export const SEND_ACQUIRE_0028 = `CREATE FUNCTION docket_send_acquire(p_tenant uuid, p_wanted integer, p_in_flight integer, p_window_ms bigint, p_slot_ms bigint,
    p_lease_ms integer, p_default_per_window integer, p_default_concurrent integer, p_lease_id uuid)
  RETURNS TABLE (granted integer, slots integer, now_ms bigint, per_window integer, sent integer, oldest_slot bigint, concurrent integer,
    in_use integer, next_expiry_ms bigint)
  LANGUAGE plpgsql VOLATILE AS $$
  DECLARE
    v_at timestamptz;
    v_first bigint;
  BEGIN
    PERFORM pg_advisory_xact_lock(1397050948, hashtext(p_tenant::text));
    PERFORM set_config('synchronous_commit', 'off', true);
    v_at := clock_timestamp();
    now_ms := floor(extract(epoch FROM v_at) * 1000)::bigint;
    v_first := (now_ms - p_window_ms) / p_slot_ms;
    DELETE FROM send_rate_slots s WHERE s.tenant_id = p_tenant AND s.slot < v_first;
    DELETE FROM send_leases l WHERE l.tenant_id = p_tenant AND l.expires_at <= v_at;
    SELECT t.max_per_minute, t.max_concurrent INTO per_window, concurrent FROM tenant_send_settings t WHERE t.tenant_id = p_tenant;
    per_window := coalesce(per_window, p_default_per_window);
    concurrent := coalesce(concurrent, p_default_concurrent);
    SELECT coalesce(sum(s.sends), 0)::integer, min(s.slot) INTO sent, oldest_slot FROM send_rate_slots s WHERE s.tenant_id = p_tenant;
    SELECT coalesce(sum(l.slots), 0)::integer, floor(extract(epoch FROM min(l.expires_at)) * 1000)::bigint INTO in_use, next_expiry_ms
      FROM send_leases l WHERE l.tenant_id = p_tenant;
    granted := CASE WHEN concurrent > in_use THEN greatest(0, least(p_wanted, per_window - sent)) ELSE 0 END;
    slots := least(p_in_flight, concurrent - in_use, granted);
    IF granted > 0 THEN
      INSERT INTO send_rate_slots AS s (tenant_id, slot, sends) VALUES (p_tenant, now_ms / p_slot_ms, granted)
        ON CONFLICT (tenant_id, slot) DO UPDATE SET sends = s.sends + EXCLUDED.sends;
      INSERT INTO send_leases (tenant_id, id, slots, expires_at) VALUES (p_tenant, p_lease_id, slots, v_at + p_lease_ms * interval '1 millisecond');
    ELSE
      slots := 0;
    END IF;
    RETURN NEXT;
  END $$`;

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q('DROP FUNCTION docket_send_acquire(uuid, integer, bigint, bigint, integer, integer, integer, uuid)');
  // One grant, in one round trip (as 0013): `granted` from the per-window budget, `slots` (at most p_in_flight, at
  // most what is granted) from maxConcurrent; nothing is granted while no slot is free.
  await q(SEND_ACQUIRE_0028);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP FUNCTION docket_send_acquire(uuid, integer, integer, bigint, bigint, integer, integer, integer, uuid)');
  await qi.sequelize.query(SEND_ACQUIRE_0013);
}
