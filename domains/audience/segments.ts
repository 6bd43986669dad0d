// Segments: saved subscriber filters as JSON rules, validated with the path of each bad rule and compiled to
// parameterised SQL (campaigns snapshot their recipients with it); their CRUD and the budgeted preview.
import { Sequelize, Transaction, UniqueConstraintError } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import { Segment, Subscriber, SUBSCRIBER_STATUSES, type SubscriberStatus } from '../../db/models/audience';
import { recordAudit } from '../../lib/audit';
import { isDateTime } from '../../lib/date-time';
import { ApiError, type FieldError } from '../../lib/problems';
import { isStatementTimeout, setStatementBudget } from '../../lib/statement-budget';
import { findInTenant } from '../../lib/tenancy';
import { auditBy, Caller, CommandDeps, Precondition } from '../command';
import { refuseIfAwaitedByCampaigns } from './in-use';
import { likePrefix, normalizeEmail } from './subscribers';

// ---- the rules ----

export type AttributeValue = string | number | boolean;
type AttributeField = `attributes.${string}`;

export type SegmentCondition =
  | { field: 'status'; op: 'eq' | 'ne'; value: SubscriberStatus }
  | { field: 'status'; op: 'in'; value: SubscriberStatus[] }
  /** `in`: a member of at least one of the lists; `not_in`: of none of them. */
  | { field: 'list'; op: 'in' | 'not_in'; value: string[] }
  | { field: 'createdAt'; op: 'gt' | 'lt'; value: string }
  | { field: 'email'; op: 'eq' | 'prefix' | 'contains'; value: string }
  | { field: AttributeField; op: 'eq' | 'ne'; value: AttributeValue }
  | { field: AttributeField; op: 'in'; value: AttributeValue[] }
  | { field: AttributeField; op: 'contains'; value: string }
  | { field: AttributeField; op: 'gt' | 'lt'; value: number | string }
  | { field: AttributeField; op: 'exists'; value?: boolean };

export type SegmentRules = { all: SegmentRule[] } | { any: SegmentRule[] };
export type SegmentRule = SegmentRules | SegmentCondition;

export const SEGMENT_LIMITS = {
  /** Groups nested in groups, the outer one counting 1. */
  maxDepth: 5,
  /** Conditions and groups in all, the outer group not counted. */
  maxRules: 100,
  /** Values of one `in` (and lists of one `list` condition). */
  maxValues: 100,
  maxText: 1000,
  maxPathSegments: 5,
} as const;

const PATH_SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_ERRORS = 20;

const OPS: Record<string, readonly string[]> = {
  status: ['eq', 'ne', 'in'],
  list: ['in', 'not_in'],
  createdAt: ['gt', 'lt'],
  email: ['eq', 'prefix', 'contains'],
  attributes: ['eq', 'ne', 'in', 'contains', 'gt', 'lt', 'exists'],
};

export class SegmentRuleError extends Error {
  constructor(readonly errors: FieldError[]) {
    super(errors.map((e) => `${e.path}: ${e.message}`).join('; '));
  }
}

/** The rule errors as the API answers them: 422 INVALID_SEGMENT_RULE, `errors[].path` naming each bad rule. */
export const invalidSegmentRule = (errors: FieldError[]) =>
  new ApiError(422, 'INVALID_SEGMENT_RULE', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown): v is AttributeValue =>
  (typeof v === 'string' && v.length <= SEGMENT_LIMITS.maxText) || (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean';

/** The path segments of `attributes.<a>.<b>`, or why it is not one. */
export function attributePath(field: string): string[] | string {
  const segments = field.slice('attributes.'.length).split('.');
  if (segments.length > SEGMENT_LIMITS.maxPathSegments) return `an attribute path has at most ${SEGMENT_LIMITS.maxPathSegments} segments`;
  if (!segments.every((s) => PATH_SEGMENT.test(s))) return 'each segment of an attribute path is 1 to 64 letters, digits, _ or -';
  return segments;
}

class Validator {
  readonly errors: FieldError[] = [];
  rules = 0;

  fail(path: string, message: string): undefined {
    if (this.errors.length < MAX_ERRORS) this.errors.push({ path, message });
    return undefined;
  }

  group(raw: unknown, path: string, depth: number): SegmentRules | undefined {
    if (!isObject(raw)) return this.fail(path, 'must be an object: a group {"all": [...]} or {"any": [...]}, or a condition {"field", "op", "value"}');
    const keys = Object.keys(raw);
    if (keys.length !== 1 || (keys[0] !== 'all' && keys[0] !== 'any')) return this.fail(path, 'a group has exactly one key, "all" or "any"');
    const kind = keys[0] as 'all' | 'any';
    const items = raw[kind];
    if (!Array.isArray(items)) return this.fail(`${path}/${kind}`, 'must be an array of rules');
    if (depth > SEGMENT_LIMITS.maxDepth) return this.fail(path, `groups nest at most ${SEGMENT_LIMITS.maxDepth} deep`);
    const out: SegmentRule[] = [];
    for (let i = 0; i < items.length; i++) {
      if (++this.rules > SEGMENT_LIMITS.maxRules) return this.fail(`${path}/${kind}/${i}`, `a segment has at most ${SEGMENT_LIMITS.maxRules} rules (conditions and groups)`);
      const item: unknown = items[i];
      const at = `${path}/${kind}/${i}`;
      const rule = isObject(item) && ('all' in item || 'any' in item) ? this.group(item, at, depth + 1) : this.condition(item, at);
      if (rule) out.push(rule);
      if (this.errors.length >= MAX_ERRORS) break;
    }
    return (kind === 'all' ? { all: out } : { any: out }) as SegmentRules;
  }

  condition(raw: unknown, path: string): SegmentCondition | undefined {
    if (!isObject(raw)) return this.fail(path, 'must be an object: a group {"all": [...]} or {"any": [...]}, or a condition {"field", "op", "value"}');
    const extra = Object.keys(raw).find((k) => k !== 'field' && k !== 'op' && k !== 'value');
    if (extra !== undefined) return this.fail(`${path}/${extra.replace(/~/g, '~0').replace(/\//g, '~1')}`, 'is not a property of a condition (field, op, value)');
    const { field, op, value } = raw;
    if (typeof field !== 'string') return this.fail(`${path}/field`, 'must be status, list, createdAt, email or attributes.<name>');
    const kind = field.startsWith('attributes.') ? 'attributes' : field;
    const ops = Object.hasOwn(OPS, kind) ? OPS[kind] : undefined;
    if (!ops) return this.fail(`${path}/field`, 'must be status, list, createdAt, email or attributes.<name>');
    if (typeof op !== 'string' || !ops.includes(op)) return this.fail(`${path}/op`, `${field} takes the operators ${ops.join(', ')}`);
    const v = `${path}/value`;
    const c = (cond: SegmentCondition) => cond;
    switch (kind) {
      case 'status': {
        const status = (s: unknown) => typeof s === 'string' && (SUBSCRIBER_STATUSES as readonly string[]).includes(s);
        if (op === 'in') {
          const values = this.list(value, v, status, `each value is one of ${SUBSCRIBER_STATUSES.join(', ')}`);
          return values && c({ field: 'status', op, value: values as SubscriberStatus[] });
        }
        if (!status(value)) return this.fail(v, `must be one of ${SUBSCRIBER_STATUSES.join(', ')}`);
        return c({ field: 'status', op: op as 'eq' | 'ne', value: value as SubscriberStatus });
      }
      case 'list': {
        const values = this.list(value, v, (id) => typeof id === 'string' && UUID.test(id), 'each value is a list id (a UUID)');
        return values && c({ field: 'list', op: op as 'in' | 'not_in', value: [...new Set((values as string[]).map((id) => id.toLowerCase()))] });
      }
      case 'createdAt':
        if (typeof value !== 'string' || !isDateTime(value)) return this.fail(v, 'must be a date-time with its offset, e.g. 2026-12-01T00:00:00Z');
        return c({ field: 'createdAt', op: op as 'gt' | 'lt', value });
      case 'email':
        if (typeof value !== 'string' || value.trim() === '' || value.length > 320) return this.fail(v, 'must be text of 1 to 320 characters');
        return c({ field: 'email', op: op as 'eq' | 'prefix' | 'contains', value: normalizeEmail(value) });
      default: {
        const segments = attributePath(field);
        if (typeof segments === 'string') return this.fail(`${path}/field`, segments);
        const attr = field as AttributeField;
        switch (op) {
          case 'eq': case 'ne':
            if (!isScalar(value)) return this.fail(v, `must be text (at most ${SEGMENT_LIMITS.maxText} characters), a number or a boolean`);
            return c({ field: attr, op, value });
          case 'in': {
            const values = this.list(value, v, isScalar, 'each value is text, a number or a boolean');
            return values && c({ field: attr, op, value: values as AttributeValue[] });
          }
          case 'contains':
            if (typeof value !== 'string' || value === '' || value.length > SEGMENT_LIMITS.maxText) return this.fail(v, `must be text of 1 to ${SEGMENT_LIMITS.maxText} characters`);
            return c({ field: attr, op, value });
          case 'gt': case 'lt':
            if (!((typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && value !== '' && value.length <= SEGMENT_LIMITS.maxText))) {
              return this.fail(v, 'must be a number (compared with numbers) or text (compared with text)');
            }
            return c({ field: attr, op, value });
          default:
            if (value !== undefined && typeof value !== 'boolean') return this.fail(v, 'must be true (the attribute is set) or false (it is not), or left out');
            return c({ field: attr, op: 'exists', ...(value === undefined ? {} : { value }) });
        }
      }
    }
  }

  list(value: unknown, path: string, ok: (x: unknown) => boolean, what: string): unknown[] | undefined {
    if (!Array.isArray(value) || value.length === 0 || value.length > SEGMENT_LIMITS.maxValues) return this.fail(path, `must be an array of 1 to ${SEGMENT_LIMITS.maxValues} values`);
    const bad = value.findIndex((x) => !ok(x));
    if (bad >= 0) return this.fail(`${path}/${bad}`, what);
    return value;
  }
}

/**
 * Checks rules as a caller sent them and returns them clean (only the known properties, addresses lower-cased).
 * Throws 422 INVALID_SEGMENT_RULE whose `errors[].path` names each bad rule under `basePath`
 * (`/rules/all/2/op`), at most 20 of them.
 */
export function validateSegmentRules(raw: unknown, basePath = '/rules'): SegmentRules {
  const v = new Validator();
  const rules = v.group(raw, basePath, 1);
  if (v.errors.length || !rules) throw invalidSegmentRule(v.errors.length ? v.errors : [{ path: basePath, message: 'is not a segment rule' }]);
  return rules;
}

/** The list ids the rules name (to check they are the tenant's). */
export function segmentListIds(rules: SegmentRules, basePath = '/rules'): { id: string; path: string }[] {
  const out: { id: string; path: string }[] = [];
  const walk = (r: SegmentRule, path: string) => {
    if ('all' in r || 'any' in r) {
      const kind = 'all' in r ? 'all' : 'any';
      const items: SegmentRule[] = 'all' in r ? r.all : r.any;
      items.forEach((x, i) => walk(x, `${path}/${kind}/${i}`));
    } else if (r.field === 'list') {
      r.value.forEach((id, i) => out.push({ id, path: `${path}/value/${i}` }));
    }
  };
  walk(rules, basePath);
  return out;
}

/** The rules' conditions and groups, the outer group not counted (what SEGMENT_LIMITS.maxRules bounds). */
export function segmentRuleCount(rules: SegmentRules): number {
  const items: SegmentRule[] = 'all' in rules ? rules.all : rules.any;
  return items.reduce((n, r) => n + 1 + ('all' in r || 'any' in r ? segmentRuleCount(r) : 0), 0);
}

// ---- the SQL ----

const ALIAS = /^[a-z_][a-z0-9_]{0,30}$/;
const MEMBERS_ALIAS = 'segment_members';

/**
 * The rules as a SQL boolean expression over `subscribers <alias>` (default `s`), with `$n` placeholders from
 * `firstBind` (default 1) and their values in `bind`. It includes the tenant (`<alias>.tenant_id = $k`) and leaves
 * erased subscribers out. Every value a caller wrote is a bind parameter — attribute paths too, as a text[] for
 * `#>` / `#>>` — so the SQL text holds only Docket's own fragments.
 *
 * Semantics: `ne` is the complement of `eq` (a subscriber without the attribute is "not equal"); attribute values
 * compare as JSON (3 is not "3"); `contains` is a case-insensitive substring of text attributes (and of the
 * address); `gt`/`lt` with a number compare attributes that hold numbers, numerically, and with text compare
 * attributes that hold text, bytewise (ISO dates of the same form order correctly); other types never match.
 * An empty `all` holds for everyone, an empty `any` for no one.
 */
export function compileSegment(rules: SegmentRules, opts: { tenantId: string; alias?: string; firstBind?: number }): { where: string; bind: unknown[] } {
  const a = opts.alias ?? 's';
  if (!ALIAS.test(a) || a === MEMBERS_ALIAS) throw new Error(`compileSegment: "${a}" is not a usable table alias`);
  const checked = validateSegmentRules(rules);
  const bind: unknown[] = [];
  let next = opts.firstBind ?? 1;
  const param = (value: unknown, cast = '') => {
    bind.push(value);
    return `$${next++}${cast}`;
  };

  const condition = (c: SegmentCondition): string => {
    switch (c.field) {
      case 'status':
        if (c.op === 'in') return `${a}.status = ANY(${param(c.value, '::text[]')})`;
        return `${a}.status ${c.op === 'eq' ? '=' : '<>'} ${param(c.value)}`;
      case 'list':
        return `${c.op === 'in' ? '' : 'NOT '}EXISTS (SELECT 1 FROM list_members ${MEMBERS_ALIAS} WHERE ${MEMBERS_ALIAS}.tenant_id = ${a}.tenant_id`
          + ` AND ${MEMBERS_ALIAS}.subscriber_id = ${a}.id AND ${MEMBERS_ALIAS}.list_id = ANY(${param(c.value, '::uuid[]')}))`;
      case 'createdAt':
        return `${a}.created_at ${c.op === 'gt' ? '>' : '<'} ${param(c.value, '::timestamptz')}`;
      case 'email':
        if (c.op === 'eq') return `${a}.email = ${param(c.value)}`;
        // The address column is COLLATE "C": a LIKE prefix uses the (tenant_id, email) index.
        if (c.op === 'prefix') return `${a}.email LIKE ${param(likePrefix(c.value))}`;
        return `strpos(${a}.email, ${param(c.value)}) > 0`;
      default: {
        const segments = attributePath(c.field) as string[];
        if (c.op === 'eq' || c.op === 'ne') {
          // Containment of {"a": {"b": value}}: the same as #> equality for the scalar values attributes hold,
          // and the GIN index on attributes answers it.
          const nested = segments.reduceRight<unknown>((inner, key) => ({ [key]: inner }), c.value);
          return `${c.op === 'ne' ? 'NOT ' : ''}(${a}.attributes @> ${param(JSON.stringify(nested), '::jsonb')})`;
        }
        const path = param(segments, '::text[]');
        const json = `(${a}.attributes #> ${path})`;
        switch (c.op) {
          case 'in':
            return `(${param(JSON.stringify(c.value), '::jsonb')} @> jsonb_build_array(${json}))`;
          case 'contains':
            return `(jsonb_typeof(${json}) = 'string' AND strpos(lower(${a}.attributes #>> ${path}), ${param(c.value.toLowerCase())}) > 0)`;
          case 'gt': case 'lt': {
            const cmp = c.op === 'gt' ? '>' : '<';
            // CASE, not AND: Postgres may evaluate AND's operands in any order, and a text cast to numeric fails.
            if (typeof c.value === 'number') return `(CASE WHEN jsonb_typeof(${json}) = 'number' THEN ${json}::numeric ${cmp} ${param(c.value, '::numeric')} ELSE false END)`;
            return `(jsonb_typeof(${json}) = 'string' AND (${a}.attributes #>> ${path}) COLLATE "C" ${cmp} ${param(c.value, '::text')})`;
          }
          default:
            return `${json} IS ${c.value === false ? '' : 'NOT '}NULL`;
        }
      }
    }
  };

  const group = (g: SegmentRules): string => {
    const items: SegmentRule[] = 'all' in g ? g.all : g.any;
    if (!items.length) return 'all' in g ? 'TRUE' : 'FALSE';
    return `(${items.map((r) => ('all' in r || 'any' in r ? group(r) : condition(r))).join('all' in g ? ' AND ' : ' OR ')})`;
  };

  const tenant = param(opts.tenantId, '::uuid');
  const body = group(checked);
  return { where: `(${a}.tenant_id = ${tenant} AND ${a}.erased_at IS NULL AND ${body})`, bind };
}

// ---- saved segments and previews ----

export interface SegmentBody {
  name: string;
  description?: string;
  rules: unknown;
}

/** Refuses (422 UNKNOWN_LIST, naming each rule's path) list ids that are not lists of the tenant. */
export async function assertSegmentLists(sequelize: Sequelize, tenantId: string, rules: SegmentRules, opts: { basePath?: string; transaction?: Transaction } = {}): Promise<void> {
  const named = segmentListIds(rules, opts.basePath);
  if (!named.length) return;
  const [rows] = await sequelize.query('SELECT id FROM lists WHERE tenant_id = $1 AND id = ANY($2::uuid[])', { bind: [tenantId, [...new Set(named.map((n) => n.id))]], transaction: opts.transaction });
  const found = new Set((rows as { id: string }[]).map((r) => r.id));
  const missing = named.filter((n) => !found.has(n.id));
  if (missing.length) {
    throw new ApiError(422, 'UNKNOWN_LIST', `No list ${[...new Set(missing.map((m) => m.id))].join(', ')} in this tenant`, { errors: missing.map((m) => ({ path: m.path, message: `no list ${m.id}` })) });
  }
}

/** Rules as a caller sent them, checked whole: their shape (422 INVALID_SEGMENT_RULE) and their lists (422 UNKNOWN_LIST). */
export async function checkSegmentRules(sequelize: Sequelize, tenantId: string, raw: unknown, opts: { basePath?: string; transaction?: Transaction } = {}): Promise<SegmentRules> {
  const rules = validateSegmentRules(raw, opts.basePath);
  await assertSegmentLists(sequelize, tenantId, rules, opts);
  return rules;
}

export const findSegment = (tenantId: string, id: string, transaction?: Transaction): Promise<Segment> =>
  findInTenant(Segment, tenantId, id, 'Segment', { transaction, lock: transaction ? transaction.LOCK.UPDATE : undefined });

const duplicateName = (name: string) => new ApiError(409, 'ALREADY_EXISTS', `A segment named "${name}" exists already`);
const segmentAudit = (s: Segment) => ({ name: s.name, description: s.description, rules: s.rules, version: s.version });

async function uniqueName<T>(name: string | undefined, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof UniqueConstraintError) throw duplicateName(name ?? '');
    throw err;
  }
}

export async function createSegment(deps: CommandDeps, c: Caller, body: SegmentBody): Promise<Segment> {
  const rules = validateSegmentRules(body.rules);
  return uniqueName(body.name, () => deps.sequelize.transaction(async (transaction) => {
    await assertSegmentLists(deps.sequelize, c.tenantId, rules, { transaction });
    const s = await Segment.create({ tenantId: c.tenantId, id: uuidv7(), name: body.name, description: body.description ?? '', rules, version: 1, createdBy: c.actor.id }, { transaction });
    await recordAudit({ ...auditBy(c), action: 'audience.segment.created', entityType: 'segment', entityId: s.id, after: segmentAudit(s) }, transaction);
    return s;
  }));
}

/** Changes what the body names; every change is a new version, guarded by the caller's precondition (If-Match). */
export async function updateSegment(deps: CommandDeps, c: Caller, id: string, body: Partial<SegmentBody>, precondition?: Precondition): Promise<Segment> {
  const rules = body.rules === undefined ? undefined : validateSegmentRules(body.rules);
  return uniqueName(body.name, () => deps.sequelize.transaction(async (transaction) => {
    const s = await findSegment(c.tenantId, id, transaction);
    precondition?.(s.version);
    if (rules) await assertSegmentLists(deps.sequelize, c.tenantId, rules, { transaction });
    const before = segmentAudit(s);
    if (body.name !== undefined) s.name = body.name;
    if (body.description !== undefined) s.description = body.description;
    if (rules) s.rules = rules;
    s.version = s.version + 1;
    await s.save({ transaction });
    await recordAudit({ ...auditBy(c), action: 'audience.segment.updated', entityType: 'segment', entityId: s.id, before, after: segmentAudit(s) }, transaction);
    return s;
  }));
}

export async function deleteSegment(deps: CommandDeps, c: Caller, id: string, precondition?: Precondition): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const s = await findSegment(c.tenantId, id, transaction);
    precondition?.(s.version);
    await refuseIfAwaitedByCampaigns(deps.sequelize, 'segment', c.tenantId, s.id, transaction);
    await s.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'audience.segment.deleted', entityType: 'segment', entityId: s.id, before: segmentAudit(s) }, transaction);
  });
}

export const SEGMENT_SAMPLE_SIZE = 10;

/**
 * Key class of pg_try_advisory_xact_lock(class, hashtext(tenant)): one audience query — a segment preview, or a
 * campaign send's audience check — per tenant at a time.
 */
const AUDIENCE_QUERY_LOCK_CLASS = 727_276;

/**
 * Runs `work` — queries over the tenant's subscribers whose cost depends on rules a caller wrote — in a transaction
 * holding the tenant's audience-query lock, its statements under a statement_timeout of `budgetMs` (counted from
 * the call; `renew` gives a later statement what is left of it). The budget bounds a statement, the lock how many
 * a tenant runs at once (else ten parallel queries of an expensive rule hold ten pooled connections for the whole
 * budget, and every other tenant waits): another one of the tenant is 429 RATE_LIMITED at once, with Retry-After;
 * one over the budget is cancelled by Postgres and answers 422 SEGMENT_TOO_EXPENSIVE (`what` took longer …).
 */
export async function withAudienceBudget<T>(
  sequelize: Sequelize, tenantId: string, opts: { budgetMs: number; what: string },
  work: (transaction: Transaction, renew: () => Promise<void>) => Promise<T>,
): Promise<T> {
  const started = Date.now();
  const renew = (transaction: Transaction) => () => setStatementBudget(sequelize, transaction, opts.budgetMs, started);
  try {
    return await sequelize.transaction(async (transaction) => {
      const [[lock]] = await sequelize.query('SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS ok', { bind: [AUDIENCE_QUERY_LOCK_CLASS, tenantId], transaction }) as [{ ok: boolean }[], unknown];
      if (!lock.ok) throw new ApiError(429, 'RATE_LIMITED', 'Another segment preview or campaign audience check of this tenant is running; retry in 1 s', { headers: { 'Retry-After': '1' } });
      await renew(transaction)();
      return work(transaction, renew(transaction));
    });
  } catch (err) {
    if (isStatementTimeout(err)) {
      throw new ApiError(422, 'SEGMENT_TOO_EXPENSIVE', `${opts.what} took longer than its budget of ${opts.budgetMs} ms; narrow its rules (a list, a status or an attribute equality narrow best)`);
    }
    throw err;
  }
}

/**
 * How many of the tenant's subscribers the rules match, and the newest few of them. Its cost depends on the rules
 * and the audience, so count and sample run under one time budget, one audience query per tenant at a time
 * (withAudienceBudget): over the budget the caller gets 422 SEGMENT_TOO_EXPENSIVE rather than a request that
 * hangs; a second preview (or a campaign send's audience check) of the tenant is 429 at once.
 */
export async function previewSegment(sequelize: Sequelize, tenantId: string, rules: SegmentRules, opts: { budgetMs: number }): Promise<{ count: number; sample: Subscriber[] }> {
  const { where, bind } = compileSegment(rules, { tenantId, alias: 's' });
  return withAudienceBudget(sequelize, tenantId, { budgetMs: opts.budgetMs, what: 'Previewing this segment' }, async (transaction, renew) => {
    const [rows] = await sequelize.query(`SELECT count(*)::int AS count FROM subscribers s WHERE ${where}`, { bind, transaction });
    const count = (rows as { count: number }[])[0].count;
    if (count === 0) return { count, sample: [] };
    // The sample gets what is left of the same budget.
    await renew();
    const sample = await sequelize.query(`SELECT s.* FROM subscribers s WHERE ${where} ORDER BY s.created_at DESC, s.id DESC LIMIT ${SEGMENT_SAMPLE_SIZE}`,
      { bind, transaction, model: Subscriber, mapToModel: true });
    return { count, sample };
  });
}
