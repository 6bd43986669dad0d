// Segment rules: validation with the path of each bad rule, and compilation to SQL whose text holds no caller value.
import { ApiError } from '../../lib/problems';
import { compileSegment, SEGMENT_LIMITS, segmentListIds, validateSegmentRules } from '../../domains/audience/segments';

const TENANT = '11111111-1111-4111-8111-111111111111';
const LIST = '22222222-2222-4222-8222-222222222222';

function refusal(raw: unknown): ApiError {
  try {
    validateSegmentRules(raw);
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('accepted');
}
const paths = (raw: unknown) => refusal(raw).extra.errors!.map((e) => e.path);

describe('validateSegmentRules', () => {
  it('accepts every field and operator and returns the rules clean', () => {
    const rules = {
      all: [
        { field: 'status', op: 'eq', value: 'active' },
        { field: 'status', op: 'in', value: ['active', 'bounced'] },
        { field: 'list', op: 'in', value: [LIST.toUpperCase()] },
        { field: 'createdAt', op: 'gt', value: '2026-01-01T00:00:00Z' },
        { field: 'email', op: 'prefix', value: ' Ada@' },
        { any: [{ field: 'attributes.plan', op: 'in', value: ['pro', 3, true] }, { field: 'attributes.address.city', op: 'exists' }] },
        { field: 'attributes.seats', op: 'gt', value: 2.5 },
        { field: 'attributes.plan', op: 'contains', value: 'Pr' },
        { field: 'attributes.vip', op: 'exists', value: false },
      ],
    };
    const clean = validateSegmentRules(rules);
    expect(clean).toEqual({
      all: [
        rules.all[0], rules.all[1],
        { field: 'list', op: 'in', value: [LIST] },
        rules.all[3],
        { field: 'email', op: 'prefix', value: 'ada@' },
        rules.all[5], rules.all[6], rules.all[7], rules.all[8],
      ],
    });
    expect(segmentListIds(clean)).toEqual([{ id: LIST, path: '/rules/all/2/value/0' }]);
  });

  it('names the path of each bad rule, with the stable code', () => {
    const err = refusal({ all: [{ field: 'status', op: 'eq', value: 'active' }, { any: [{ field: 'email', op: 'gt', value: 'a' }] }, { field: 'attributes.plan', op: 'between', value: 1 }] });
    expect(err.status).toBe(422);
    expect(err.code).toBe('INVALID_SEGMENT_RULE');
    expect(err.extra.errors!.map((e) => e.path)).toEqual(['/rules/all/1/any/0/op', '/rules/all/2/op']);
    expect(paths({ all: [{ field: 'nickname', op: 'eq', value: 'x' }] })).toEqual(['/rules/all/0/field']);
    expect(paths({ all: [{ field: 'status', op: 'eq', value: 'sleeping' }] })).toEqual(['/rules/all/0/value']);
    expect(paths({ all: [{ field: 'status', op: 'in', value: ['active', 'gone'] }] })).toEqual(['/rules/all/0/value/1']);
    expect(paths({ all: [{ field: 'list', op: 'in', value: ['not-a-uuid'] }] })).toEqual(['/rules/all/0/value/0']);
    expect(paths({ all: [{ field: 'list', op: 'in', value: [] }] })).toEqual(['/rules/all/0/value']);
    expect(paths({ all: [{ field: 'createdAt', op: 'gt', value: '2026-02-30' }] })).toEqual(['/rules/all/0/value']);
    expect(paths({ all: [{ field: 'createdAt', op: 'gt', value: '2026-02-30T00:00:00Z' }] })).toEqual(['/rules/all/0/value']);
    expect(paths({ all: [{ field: 'attributes.', op: 'exists' }] })).toEqual(['/rules/all/0/field']);
    expect(paths({ all: [{ field: 'attributes.a b', op: 'exists' }] })).toEqual(['/rules/all/0/field']);
    expect(paths({ all: [{ field: 'attributes.a.b.c.d.e.f', op: 'exists' }] })).toEqual(['/rules/all/0/field']);
    expect(paths({ all: [{ field: 'attributes.plan', op: 'eq', value: { nested: 1 } }] })).toEqual(['/rules/all/0/value']);
    expect(paths({ all: [{ field: 'attributes.plan', op: 'eq', value: null }] })).toEqual(['/rules/all/0/value']);
    expect(paths({ all: [{ field: 'attributes.plan', op: 'gt', value: true }] })).toEqual(['/rules/all/0/value']);
    expect(paths({ all: [{ field: 'attributes.plan', op: 'exists', value: 'yes' }] })).toEqual(['/rules/all/0/value']);
    expect(paths({ all: [{ field: 'status', op: 'eq', value: 'active', extra: 1 }] })).toEqual(['/rules/all/0/extra']);
    expect(paths({ all: [{ field: 'status', op: 'eq', value: 'active', 'a/b': 1 }] })).toEqual(['/rules/all/0/a~1b']);
    expect(paths({ all: [{ all: [], any: [] }] })).toEqual(['/rules/all/0']);
    expect(paths({ all: 'x' })).toEqual(['/rules/all']);
    expect(paths({ none: [] })).toEqual(['/rules']);
    expect(paths([])).toEqual(['/rules']);
    expect(paths(null)).toEqual(['/rules']);
  });

  it('limits nesting depth and the number of rules', () => {
    let rules: object = { field: 'status', op: 'eq', value: 'active' };
    for (let i = 0; i < SEGMENT_LIMITS.maxDepth; i++) rules = { all: [rules] };
    expect(() => validateSegmentRules(rules)).not.toThrow();
    expect(paths({ all: [rules] })).toEqual(['/rules/all/0/all/0/all/0/all/0/all/0']);
    const cond = { field: 'status', op: 'eq', value: 'active' };
    expect(() => validateSegmentRules({ all: Array(SEGMENT_LIMITS.maxRules).fill(cond) })).not.toThrow();
    expect(paths({ all: Array(SEGMENT_LIMITS.maxRules + 1).fill(cond) })).toEqual([`/rules/all/${SEGMENT_LIMITS.maxRules}`]);
    // Groups count too: many empty groups are as many rules.
    expect(paths({ any: Array(SEGMENT_LIMITS.maxRules + 1).fill({ all: [] }) })).toEqual([`/rules/any/${SEGMENT_LIMITS.maxRules}`]);
    expect(paths({ all: [{ field: 'attributes.x', op: 'in', value: Array(SEGMENT_LIMITS.maxValues + 1).fill(1) }] })).toEqual(['/rules/all/0/value']);
  });

  it('reports at most 20 errors', () => {
    expect(refusal({ all: Array(50).fill({ field: 'x', op: 'eq', value: 1 }) }).extra.errors).toHaveLength(20);
  });
});

describe('compileSegment', () => {
  const compile = (rule: object, opts: { alias?: string; firstBind?: number } = {}) => compileSegment(validateSegmentRules({ all: [rule] }), { tenantId: TENANT, ...opts });

  it('scopes to the tenant, leaves erased subscribers out, and numbers placeholders from firstBind', () => {
    const { where, bind } = compile({ field: 'status', op: 'eq', value: 'active' }, { alias: 'sub', firstBind: 4 });
    expect(where).toBe('(sub.tenant_id = $4::uuid AND sub.erased_at IS NULL AND (sub.status = $5))');
    expect(bind).toEqual([TENANT, 'active']);
  });

  it.each([
    [{ field: 'status', op: 'ne', value: 'bounced' }, 's.status <> $2', ['bounced']],
    [{ field: 'status', op: 'in', value: ['active', 'bounced'] }, 's.status = ANY($2::text[])', [['active', 'bounced']]],
    [{ field: 'list', op: 'in', value: [LIST] }, 'EXISTS (SELECT 1 FROM list_members segment_members WHERE segment_members.tenant_id = s.tenant_id AND segment_members.subscriber_id = s.id AND segment_members.list_id = ANY($2::uuid[]))', [[LIST]]],
    [{ field: 'list', op: 'not_in', value: [LIST] }, 'NOT EXISTS (SELECT 1 FROM list_members segment_members WHERE segment_members.tenant_id = s.tenant_id AND segment_members.subscriber_id = s.id AND segment_members.list_id = ANY($2::uuid[]))', [[LIST]]],
    [{ field: 'createdAt', op: 'lt', value: '2026-01-01T00:00:00+01:00' }, 's.created_at < $2::timestamptz', ['2026-01-01T00:00:00+01:00']],
    [{ field: 'email', op: 'eq', value: 'Ada@X.com' }, 's.email = $2', ['ada@x.com']],
    [{ field: 'email', op: 'prefix', value: 'a_%' }, 's.email LIKE $2', ['a\\_\\%%']],
    [{ field: 'email', op: 'contains', value: '@x' }, 'strpos(s.email, $2) > 0', ['@x']],
    [{ field: 'attributes.plan', op: 'eq', value: 'pro' }, '(s.attributes @> $2::jsonb)', ['{"plan":"pro"}']],
    [{ field: 'attributes.a.b', op: 'ne', value: 3 }, 'NOT (s.attributes @> $2::jsonb)', ['{"a":{"b":3}}']],
    [{ field: 'attributes.plan', op: 'in', value: ['pro', 3] }, '($3::jsonb @> jsonb_build_array((s.attributes #> $2::text[])))', [['plan'], '["pro",3]']],
    [{ field: 'attributes.plan', op: 'contains', value: 'PR' }, "(jsonb_typeof((s.attributes #> $2::text[])) = 'string' AND strpos(lower(s.attributes #>> $2::text[]), $3) > 0)", [['plan'], 'pr']],
    [{ field: 'attributes.seats', op: 'gt', value: 2 }, "(CASE WHEN jsonb_typeof((s.attributes #> $2::text[])) = 'number' THEN (s.attributes #> $2::text[])::numeric > $3::numeric ELSE false END)", [['seats'], 2]],
    [{ field: 'attributes.since', op: 'lt', value: '2026' }, "(jsonb_typeof((s.attributes #> $2::text[])) = 'string' AND (s.attributes #>> $2::text[]) COLLATE \"C\" < $3::text)", [['since'], '2026']],
    [{ field: 'attributes.a.b', op: 'exists' }, '(s.attributes #> $2::text[]) IS NOT NULL', [['a', 'b']]],
    [{ field: 'attributes.a', op: 'exists', value: false }, '(s.attributes #> $2::text[]) IS NULL', [['a']]],
  ])('%j compiles to a bound expression', (rule, sql, values) => {
    const { where, bind } = compile(rule);
    expect(where).toBe(`(s.tenant_id = $1::uuid AND s.erased_at IS NULL AND (${sql}))`);
    expect(bind).toEqual([TENANT, ...values]);
  });

  it('nests all and any with parentheses; an empty all holds for everyone, an empty any for no one', () => {
    const rules = validateSegmentRules({ any: [{ all: [{ field: 'status', op: 'eq', value: 'active' }, { field: 'email', op: 'contains', value: 'x' }] }, { field: 'status', op: 'eq', value: 'bounced' }, { any: [] }, { all: [] }] });
    expect(compileSegment(rules, { tenantId: TENANT }).where)
      .toBe('(s.tenant_id = $1::uuid AND s.erased_at IS NULL AND ((s.status = $2 AND strpos(s.email, $3) > 0) OR s.status = $4 OR FALSE OR TRUE))');
    expect(compileSegment({ all: [] }, { tenantId: TENANT }).where).toBe('(s.tenant_id = $1::uuid AND s.erased_at IS NULL AND TRUE)');
  });

  it('puts every value a caller wrote in bind, never in the SQL text', () => {
    const evil = "x'); DROP TABLE subscribers; --";
    const rules = validateSegmentRules({
      all: [
        { field: 'email', op: 'eq', value: evil }, { field: 'email', op: 'prefix', value: evil }, { field: 'email', op: 'contains', value: evil },
        { field: 'attributes.plan', op: 'eq', value: evil }, { field: 'attributes.plan', op: 'ne', value: evil }, { field: 'attributes.plan', op: 'in', value: [evil] },
        { field: 'attributes.plan', op: 'contains', value: evil }, { field: 'attributes.plan', op: 'gt', value: evil }, { field: 'attributes.plan', op: 'lt', value: evil },
      ],
    });
    const { where, bind } = compileSegment(rules, { tenantId: TENANT });
    expect(where).not.toMatch(/DROP|plan|'\)/);
    expect(where.match(/\$\d+/g)!.every((p) => Number(p.slice(1)) <= bind.length)).toBe(true);
    expect(JSON.stringify(bind)).toContain('DROP TABLE');
    // Attribute path names are bound as well: the SQL text is the same whatever attribute a rule names.
    const a = compileSegment(validateSegmentRules({ all: [{ field: 'attributes.plan', op: 'exists' }] }), { tenantId: TENANT });
    const b = compileSegment(validateSegmentRules({ all: [{ field: 'attributes.zz-9', op: 'exists' }] }), { tenantId: TENANT });
    expect(a.where).toBe(b.where);
  });

  it('refuses rules it was handed unchecked, and an alias that is not a plain identifier', () => {
    expect(() => compileSegment({ all: [{ field: 'status', op: 'eq', value: "active' OR '1'='1" as never }] }, { tenantId: TENANT })).toThrow(ApiError);
    expect(() => compileSegment({ all: [] }, { tenantId: TENANT, alias: 's; DROP' })).toThrow(/alias/);
    expect(() => compileSegment({ all: [] }, { tenantId: TENANT, alias: 'segment_members' })).toThrow(/alias/);
  });
});
