// Whether a list or segment is still to be read by a campaign's snapshot: a scheduled campaign, or one sent and not
// snapshotted yet, names it in its audience. Deleting it then would fail that send at its time (or, for an
// exclusion, mail people it was meant to keep out), so the delete is refused instead.
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ApiError } from '../../lib/problems';

const KEYS = { list: ['listIds', 'excludeListIds'], segment: ['segmentIds', 'excludeSegmentIds'] } as const;

/**
 * 409 DEPENDENCY_EXISTS (with `count`, the first campaigns named) while campaigns waiting to snapshot their audience name
 * the list or segment. The caller holds the row FOR UPDATE; the snapshot and scheduling read it FOR SHARE
 * (domains/campaigns/audience.ts), so neither can slip between this check and the delete.
 */
export async function refuseIfAwaitedByCampaigns(sequelize: Sequelize, kind: keyof typeof KEYS, tenantId: string, id: string, transaction: Transaction): Promise<void> {
  const [include, exclude] = KEYS[kind];
  const rows = await sequelize.query<{ id: string }>(
    `SELECT id FROM campaigns WHERE tenant_id = $1 AND (status = 'scheduled' OR (status = 'running' AND audience_size IS NULL))
       AND (audience->'${include}' @> jsonb_build_array($2::text) OR audience->'${exclude}' @> jsonb_build_array($2::text))
     ORDER BY id LIMIT 100`,
    { bind: [tenantId, id], type: QueryTypes.SELECT, transaction },
  );
  if (rows.length) {
    const named = rows.slice(0, 3).map((r) => r.id).join(', ') + (rows.length > 3 ? ', …' : '');
    throw new ApiError(409, 'DEPENDENCY_EXISTS', `${rows.length} campaign(s) waiting to send use this ${kind} (${named}); cancel them or take it out of their audience first`,
      { count: rows.length });
  }
}
