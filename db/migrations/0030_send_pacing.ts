// The send limiter paces its grants as well as counting them. With only the sliding window, a campaign that can
// send faster than its tenant's limit used the whole minute's budget in a burst, waited for the grants to leave the
// window, then rebuilt the burst from slots freed one at a time — in smaller grants, each paying a batch's overhead,
// and a little late each time. So a 60 s window that began in a burst and ended in a gap held as little as 0.90 of
// the limit (bench/README.md, suite campaigns). Now a tenant is granted at most its rate (maxPerMinute / window)
// plus a burst of p_burst_ms worth (GCRA: a "theoretical arrival time" per tenant, in send_pacing); the sliding
// window still caps every window exactly.
//
// So as not to hand out grants too small to be worth a batch, while pacing is what stops a grant, nothing is
// granted until half a burst's worth (at most what is wanted, at least one) fits, and `pace_ready_ms` says when.
import { QueryInterface } from 'sequelize';
import { SEND_ACQUIRE_0028 } from './0028_send_limiter_in_flight';

const SEND_ACQUIRE_0030 = `CREATE FUNCTION docket_send_acquire(p_tenant uuid, p_wanted integer, p_in_flight integer, p_window_ms bigint, p_slot_ms bigint,
    p_lease_ms integer, p_default_per_window integer, p_default_concurrent integer, p_lease_id uuid, p_burst_ms bigint)
  RETURNS TABLE (granted integer, slots integer, now_ms bigint, per_window integer, sent integer, oldest_slot bigint, concurrent integer,
    in_use integer, next_expiry_ms bigint, pace_ready_ms bigint)
  LANGUAGE plpgsql VOLATILE AS $$
  DECLARE
    v_at timestamptz;
    v_first bigint;
    v_interval double precision;
    v_tat double precision;
    v_paced integer;
    v_need integer;
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
    -- The pace: one send every v_interval ms; the tenant may run up to p_burst_ms ahead of it.
    v_interval := p_window_ms::double precision / per_window;
    SELECT p.tat_ms INTO v_tat FROM send_pacing p WHERE p.tenant_id = p_tenant;
    v_tat := greatest(coalesce(v_tat, now_ms), now_ms);
    -- At a steady rate the pace is never more than a burst and one send ahead. Further ahead, it was set at a lower
    -- limit (a send granted at 1 a minute puts the next a minute ahead): brought back to this rate's furthest, and
    -- stored, so the raised limit applies from the next grant and the wait shrinks as time passes.
    IF v_tat > now_ms + p_burst_ms + v_interval THEN
      v_tat := now_ms + p_burst_ms + v_interval;
      UPDATE send_pacing p SET tat_ms = v_tat WHERE p.tenant_id = p_tenant;
    END IF;
    v_paced := CASE WHEN v_tat <= now_ms + p_burst_ms THEN floor((now_ms + p_burst_ms - v_tat) / v_interval)::integer + 1 ELSE 0 END;
    v_need := least(p_wanted, greatest(1, floor(p_burst_ms / v_interval / 2)::integer));
    granted := CASE WHEN concurrent > in_use THEN greatest(0, least(p_wanted, per_window - sent)) ELSE 0 END;
    IF granted > v_paced THEN
      granted := CASE WHEN v_paced >= v_need THEN v_paced ELSE 0 END;
      pace_ready_ms := ceil(v_tat + (v_need - 1) * v_interval - p_burst_ms)::bigint;
    END IF;
    slots := least(p_in_flight, concurrent - in_use, granted);
    IF granted > 0 THEN
      INSERT INTO send_rate_slots AS s (tenant_id, slot, sends) VALUES (p_tenant, now_ms / p_slot_ms, granted)
        ON CONFLICT (tenant_id, slot) DO UPDATE SET sends = s.sends + EXCLUDED.sends;
      INSERT INTO send_leases (tenant_id, id, slots, expires_at) VALUES (p_tenant, p_lease_id, slots, v_at + p_lease_ms * interval '1 millisecond');
      INSERT INTO send_pacing AS p (tenant_id, tat_ms) VALUES (p_tenant, v_tat + granted * v_interval)
        ON CONFLICT (tenant_id) DO UPDATE SET tat_ms = EXCLUDED.tat_ms;
    ELSE
      slots := 0;
    END IF;
    RETURN NEXT;
  END $$`;

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  // Unlogged: a Postgres crash forgets the pace (the next grant may start a burst); the window still caps it.
  await q(`CREATE UNLOGGED TABLE send_pacing (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    tat_ms double precision NOT NULL
  )`);
  await q('DROP FUNCTION docket_send_acquire(uuid, integer, integer, bigint, bigint, integer, integer, integer, uuid)');
  await q(SEND_ACQUIRE_0030);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP FUNCTION docket_send_acquire(uuid, integer, integer, bigint, bigint, integer, integer, integer, uuid, bigint)');
  await qi.sequelize.query(SEND_ACQUIRE_0028);
  await qi.sequelize.query('DROP TABLE send_pacing');
}
