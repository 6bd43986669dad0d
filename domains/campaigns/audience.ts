// Who a campaign sends to, as one parameterised SQL condition over `subscribers s`: active subscribers of the
// tenant in any of its lists or segments, minus those in an excluded list or segment. Used to check that an
// audience is not empty, and by the snapshot — one set-based INSERT … SELECT DISTINCT ON the address.
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { Segment } from '../../db/models/audience';
import type { CampaignAudience } from '../../db/models/campaigns';
import { ApiError } from '../../lib/problems';
import { compileSegment, segmentRuleCount, withAudienceBudget, type SegmentRules } from '../audience/segments';

/** The condition and its parameters (appended to `bind`). */
export interface AudienceSql {
  where: string;
}

/**
 * The tenant's segments of `ids` (FOR SHARE inside a transaction: a delete, which refuses while a waiting campaign
 * names the segment, waits for it); one the tenant does not have is refused (422 UNKNOWN_SEGMENT, naming each).
 */
async function segmentsOf(tenantId: string, ids: string[], path: string, transaction?: Transaction): Promise<SegmentRules[]> {
  if (!ids.length) return [];
  const found = await Segment.findAll({ where: { tenantId, id: ids }, attributes: ['id', 'rules'], transaction, lock: transaction ? transaction.LOCK.SHARE : undefined });
  const missing = ids.map((id, i) => ({ id, i })).filter(({ id }) => !found.some((f) => f.id === id));
  if (missing.length) {
    throw new ApiError(422, 'UNKNOWN_SEGMENT', `No segment ${missing.map((m) => m.id).join(', ')} in this tenant`, { errors: missing.map((m) => ({ path: `${path}/${m.i}`, message: `no segment ${m.id}` })) });
  }
  return ids.map((id) => found.find((f) => f.id === id)!.rules as SegmentRules);
}

/** Each segment's rules compiled to SQL over `s` (domains/audience/segments.ts), their values appended to `bind`. */
function segmentConditions(tenantId: string, segments: SegmentRules[], bind: unknown[]): string[] {
  return segments.map((rules) => {
    const compiled = compileSegment(rules, { tenantId, alias: 's', firstBind: bind.length + 1 });
    bind.push(...compiled.bind);
    return compiled.where;
  });
}

export const AUDIENCE_LIMITS = {
  /**
   * Conditions of one audience: each rule of each of its segments (conditions and groups, as a segment counts them
   * toward its own 100) and each of its lists. Every subscriber row is tested against all of them, so this bounds the
   * per-row cost of the send's audience check and of the snapshot. 1,000 is ten segments of the largest size a
   * segment may have, or dozens of ordinary ones with lists besides — more than a real campaign names — while the
   * request schema alone would allow 200 segments of 100 rules (20,200 conditions, 20 times as many).
   */
  maxConditions: 1000,
} as const;

/** Refuses (422 AUDIENCE_TOO_COMPLEX, with `count`) an audience of more than AUDIENCE_LIMITS.maxConditions conditions. */
function assertConditions(audience: CampaignAudience, segments: SegmentRules[]): void {
  const count = audience.listIds.length + audience.excludeListIds.length + segments.reduce((n, rules) => n + segmentRuleCount(rules), 0);
  if (count > AUDIENCE_LIMITS.maxConditions) {
    throw new ApiError(422, 'AUDIENCE_TOO_COMPLEX', `This audience has ${count} conditions (the rules of its segments and its lists, exclusions included); at most ${AUDIENCE_LIMITS.maxConditions}: name fewer or smaller segments`, {
      count, errors: [{ path: '/requestBody/audience', message: `has ${count} conditions; at most ${AUDIENCE_LIMITS.maxConditions}` }],
    });
  }
}

/** Refuses (422 UNKNOWN_LIST, naming each) lists of the audience that are not the tenant's. */
async function assertLists(sequelize: Sequelize, tenantId: string, audience: CampaignAudience, transaction?: Transaction): Promise<void> {
  const named = [...audience.listIds.map((id, i) => ({ id, path: `/requestBody/audience/listIds/${i}` })), ...audience.excludeListIds.map((id, i) => ({ id, path: `/requestBody/audience/excludeListIds/${i}` }))];
  if (!named.length) return;
  const found = await sequelize.query<{ id: string }>(`SELECT id FROM lists WHERE tenant_id = $1 AND id = ANY($2::uuid[])${transaction ? ' FOR SHARE' : ''}`, {
    bind: [tenantId, named.map((n) => n.id)], type: QueryTypes.SELECT, transaction,
  });
  const known = new Set(found.map((f) => f.id));
  const missing = named.filter((n) => !known.has(n.id));
  if (missing.length) {
    throw new ApiError(422, 'UNKNOWN_LIST', `No list ${[...new Set(missing.map((m) => m.id))].join(', ')} in this tenant`, { errors: missing.map((m) => ({ path: m.path, message: `no list ${m.id}` })) });
  }
}

/**
 * The audience as SQL over `subscribers s`, its parameters appended to `bind`. Every list and segment it names must
 * be the tenant's (422 UNKNOWN_LIST / UNKNOWN_SEGMENT): also at the snapshot, where a list or segment deleted since
 * the campaign was scheduled fails the send rather than send to people an exclusion was meant to keep out.
 */
export async function audienceSql(sequelize: Sequelize, tenantId: string, audience: CampaignAudience, bind: unknown[], transaction?: Transaction): Promise<AudienceSql> {
  await assertLists(sequelize, tenantId, audience, transaction);
  const included = await segmentsOf(tenantId, audience.segmentIds, '/requestBody/audience/segmentIds', transaction);
  const excluded = await segmentsOf(tenantId, audience.excludeSegmentIds, '/requestBody/audience/excludeSegmentIds', transaction);
  assertConditions(audience, [...included, ...excluded]);
  const include = segmentConditions(tenantId, included, bind);
  const exclude = segmentConditions(tenantId, excluded, bind);
  bind.push(tenantId);
  const t = `$${bind.length}`;
  const inLists = (ids: string[]) => {
    bind.push(ids);
    return `EXISTS (SELECT 1 FROM list_members m WHERE m.tenant_id = ${t} AND m.subscriber_id = s.id AND m.list_id = ANY($${bind.length}::uuid[]))`;
  };
  if (audience.listIds.length) include.unshift(inLists(audience.listIds));
  if (audience.excludeListIds.length) exclude.unshift(inLists(audience.excludeListIds));
  const parts = [`s.tenant_id = ${t}`, "s.status = 'active'", 's.erased_at IS NULL', include.length ? `(${include.join(' OR ')})` : 'false'];
  for (const e of exclude) parts.push(`NOT (${e})`);
  return { where: parts.join(' AND ') };
}

/**
 * Whether the audience has anyone to send to (today: a scheduled send snapshots it again at its time). Its lists and
 * segments are read and checked first (422 UNKNOWN_LIST, UNKNOWN_SEGMENT, AUDIENCE_TOO_COMPLEX), holding no lock.
 * The query's cost depends on the segments' rules, so it runs as a segment preview does (withAudienceBudget): under
 * `budgetMs` (past it Postgres cancels it: 422 SEGMENT_TOO_EXPENSIVE), and one at a time per tenant, previews
 * included (another is 429 RATE_LIMITED with Retry-After), so a burst of sends cannot hold the API's connections.
 */
export async function audienceHasAnyone(sequelize: Sequelize, tenantId: string, audience: CampaignAudience, opts: { budgetMs: number }): Promise<boolean> {
  const bind: unknown[] = [];
  const { where } = await audienceSql(sequelize, tenantId, audience, bind);
  return withAudienceBudget(sequelize, tenantId, { budgetMs: opts.budgetMs, what: 'Checking this campaign\'s audience' }, async (transaction) => {
    const [row] = await sequelize.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM subscribers s WHERE ${where}) AS any`, { bind, type: QueryTypes.SELECT, transaction });
    return row.any;
  });
}

/**
 * Snapshots the audience into campaign_recipients (numbered 1..N), one row per address, in one statement; answers
 * how many. Run once per campaign (the caller holds the campaign row and checks it was not taken yet).
 */
export async function snapshotAudience(sequelize: Sequelize, tenantId: string, campaignId: string, audience: CampaignAudience, transaction: Transaction): Promise<number> {
  const bind: unknown[] = [campaignId];
  const { where } = await audienceSql(sequelize, tenantId, audience, bind, transaction);
  const [, count] = await sequelize.query(`INSERT INTO campaign_recipients (tenant_id, campaign_id, n, subscriber_id, email)
    SELECT s.tenant_id, $1, row_number() OVER (), s.id, s.email FROM (
      SELECT DISTINCT ON (lower(s.email)) s.tenant_id, s.id, s.email FROM subscribers s WHERE ${where} ORDER BY lower(s.email), s.id
    ) s`, { bind, transaction, type: QueryTypes.INSERT });
  return Number(count);
}
