// Segments through the API on real subscribers: each operator counted, previews and their budget, CRUD with
// versions and If-Match, bad rules answered with their path, tenant isolation and the permission matrix.
import { randomUUID } from 'node:crypto';
import { AuditEvent, Segment } from '../../db';
import { compileSegment, validateSegmentRules } from '../../domains/audience/segments';
import { startTestApp, TestApp } from '../helpers/app';
import { holdAudienceLock } from '../helpers/audience-lock';
import { buildCaller } from '../helpers/factories';

let app: TestApp;
beforeAll(async () => { app = await startTestApp(); });
afterAll(() => app.close());

type Key = string;
const subscriber = async (key: Key, body: Record<string, unknown>, createdAt?: string) => {
  const s = await app.call('post', '/v1/subscribers', key).send(body).expect(201);
  if (createdAt) await app.sequelize.query('UPDATE subscribers SET created_at = $1 WHERE id = $2', { bind: [createdAt, s.body.id] });
  return s.body.id as string;
};
const list = async (key: Key, name: string) => (await app.call('post', '/v1/lists', key).send({ name }).expect(201)).body.id as string;
const preview = (key: Key, rules: unknown) => app.call('post', '/v1/segments/preview', key).send({ rules });

describe('each operator, counted on real subscribers', () => {
  let key: Key;
  let l1: string;
  let l2: string;
  let theirList: string;

  beforeAll(async () => {
    ({ key } = await buildCaller(['audience.*']));
    l1 = await list(key, 'L1');
    l2 = await list(key, 'L2');
    await subscriber(key, { email: 'ann@a.com', attributes: { plan: 'pro', seats: 3, city: 'Paris', since: '2024-05-01', vip: true }, listIds: [l1] }, '2026-01-01T00:00:00Z');
    await subscriber(key, { email: 'bob@b.com', attributes: { plan: 'free', seats: 12, city: 'Berlin' }, listIds: [l1, l2] }, '2026-02-01T00:00:00Z');
    await subscriber(key, { email: 'cat@c.org', status: 'bounced', attributes: { plan: 'pro', seats: '3', since: '2025-01-01' } }, '2026-03-01T00:00:00Z');
    await subscriber(key, { email: 'dan@a.com', status: 'unsubscribed', attributes: { plan: 'team' }, listIds: [l2] }, '2026-04-01T00:00:00Z');
    await subscriber(key, { email: 'eve@e.com' }, '2026-05-01T00:00:00Z');
    // Erased: never matched, whatever it was.
    const fay = await subscriber(key, { email: 'fay@a.com', attributes: { plan: 'pro' }, listIds: [l1] }, '2026-06-01T00:00:00Z');
    await app.call('post', `/v1/subscribers/${fay}/erase`, key).expect(200);
    // Another tenant's subscribers look alike and are never counted here.
    const { key: theirs } = await buildCaller(['audience.*']);
    theirList = await list(theirs, 'L1');
    await subscriber(theirs, { email: 'ann@a.com', attributes: { plan: 'pro', seats: 3 }, listIds: [theirList] });
  });

  const cases: [string, () => object, number][] = [
    ['status eq', () => ({ field: 'status', op: 'eq', value: 'active' }), 3],
    ['status ne (the erased one, unsubscribed, not counted)', () => ({ field: 'status', op: 'ne', value: 'active' }), 2],
    ['status in', () => ({ field: 'status', op: 'in', value: ['bounced', 'unsubscribed'] }), 2],
    ['list in one', () => ({ field: 'list', op: 'in', value: [l1] }), 2],
    ['list in either', () => ({ field: 'list', op: 'in', value: [l1, l2] }), 3],
    ['list not_in', () => ({ field: 'list', op: 'not_in', value: [l1] }), 3],
    ['createdAt gt', () => ({ field: 'createdAt', op: 'gt', value: '2026-02-15T00:00:00Z' }), 3],
    ['createdAt lt, with an offset', () => ({ field: 'createdAt', op: 'lt', value: '2026-02-01T00:30:00+01:00' }), 1],
    ['email eq (any case)', () => ({ field: 'email', op: 'eq', value: 'ANN@a.com' }), 1],
    ['email prefix', () => ({ field: 'email', op: 'prefix', value: 'an' }), 1],
    ['email prefix: % is a character', () => ({ field: 'email', op: 'prefix', value: '%' }), 0],
    ['email contains', () => ({ field: 'email', op: 'contains', value: '@A.com' }), 2],
    ['attribute eq text', () => ({ field: 'attributes.plan', op: 'eq', value: 'pro' }), 2],
    ['attribute eq number: 3 is not "3"', () => ({ field: 'attributes.seats', op: 'eq', value: 3 }), 1],
    ['attribute eq boolean', () => ({ field: 'attributes.vip', op: 'eq', value: true }), 1],
    ['attribute ne: those without it included', () => ({ field: 'attributes.plan', op: 'ne', value: 'pro' }), 3],
    ['attribute in', () => ({ field: 'attributes.plan', op: 'in', value: ['pro', 'team'] }), 3],
    ['attribute in: "3" is the text', () => ({ field: 'attributes.seats', op: 'in', value: ['3'] }), 1],
    ['attribute contains (any case)', () => ({ field: 'attributes.city', op: 'contains', value: 'R' }), 2],
    ['attribute gt a number: numerically (12 > 5), text "3" not compared', () => ({ field: 'attributes.seats', op: 'gt', value: 2 }), 2],
    ['attribute lt a number', () => ({ field: 'attributes.seats', op: 'lt', value: 5 }), 1],
    ['attribute gt text: ISO dates bytewise', () => ({ field: 'attributes.since', op: 'gt', value: '2024-12-31' }), 1],
    ['attribute lt text', () => ({ field: 'attributes.since', op: 'lt', value: '2025' }), 1],
    ['attribute exists', () => ({ field: 'attributes.since', op: 'exists' }), 2],
    ['attribute exists false', () => ({ field: 'attributes.since', op: 'exists', value: false }), 3],
    ['a value that is SQL is only a value', () => ({ field: 'email', op: 'eq', value: "x'); DROP TABLE subscribers; --" }), 0],
    ['another tenant\'s list matches nothing', () => ({ field: 'list', op: 'in', value: [theirList] }), -1],
  ];

  it.each(cases)('%s', async (_name, rule, expected) => {
    const res = await preview(key, { all: [rule()] });
    if (expected < 0) {
      // Refused when named (422 with the path), and matches nothing if it reached the SQL anyway.
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ code: 'UNKNOWN_LIST', errors: [{ path: '/rules/all/0/value/0' }] });
      return;
    }
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(expected);
    expect(res.body.sample).toHaveLength(expected);
  });

  it('combines all and any, nested', async () => {
    const rules = { any: [{ all: [{ field: 'status', op: 'eq', value: 'active' }, { field: 'attributes.plan', op: 'eq', value: 'pro' }] }, { field: 'list', op: 'in', value: [l2] }] };
    const res = await preview(key, rules).expect(200);
    expect(res.body.sample.map((s: { email: string }) => s.email).sort()).toEqual(['ann@a.com', 'bob@b.com', 'dan@a.com']);
    expect((await preview(key, { all: [] }).expect(200)).body.count).toBe(5);
    expect((await preview(key, { any: [] }).expect(200)).body.count).toBe(0);
  });

  it('reaches into nested JSON along a dot path, as embedded by a caller with its own alias and first placeholder', async () => {
    // The API keeps attributes flat; rows written otherwise may nest, and a path reaches into them.
    const { tenant } = await buildCaller(['audience.*']);
    await app.sequelize.query(`INSERT INTO subscribers (tenant_id, id, email, attributes) VALUES
      ($1, gen_random_uuid(), 'n1@x.com', '{"address": {"city": "Lyon", "zip": 69001}}'), ($1, gen_random_uuid(), 'n2@x.com', '{"address": "Lyon"}'),
      ($1, gen_random_uuid(), 'n3@x.com', '{"address": {"city": "Paris"}}')`, { bind: [tenant.id] });
    const count = async (rule: object) => {
      const { where, bind } = compileSegment(validateSegmentRules({ all: [rule] }), { tenantId: tenant.id, alias: 'sub', firstBind: 2 });
      const [rows] = await app.sequelize.query(`SELECT count(*)::int AS n FROM subscribers sub WHERE $1::int = 1 AND ${where}`, { bind: [1, ...bind] });
      return (rows as { n: number }[])[0].n;
    };
    expect(await count({ field: 'attributes.address.city', op: 'eq', value: 'Lyon' })).toBe(1);
    expect(await count({ field: 'attributes.address.city', op: 'contains', value: 'YO' })).toBe(1);
    expect(await count({ field: 'attributes.address.city', op: 'in', value: ['Lyon', 'Paris'] })).toBe(2);
    expect(await count({ field: 'attributes.address.zip', op: 'gt', value: 69000 })).toBe(1);
    expect(await count({ field: 'attributes.address.city', op: 'exists' })).toBe(2);
    expect(await count({ field: 'attributes.address', op: 'eq', value: 'Lyon' })).toBe(1);
    expect(await count({ field: 'attributes.address.city', op: 'ne', value: 'Lyon' })).toBe(2);
  });

  it('compiles another tenant\'s list id to a condition that matches nothing', async () => {
    const tenant = (await app.call('get', '/v1/me', key).expect(200)).body.tenant.id;
    const { where, bind } = compileSegment(validateSegmentRules({ all: [{ field: 'list', op: 'in', value: [theirList] }] }), { tenantId: tenant });
    const [rows] = await app.sequelize.query(`SELECT count(*)::int AS n FROM subscribers s WHERE ${where}`, { bind });
    expect((rows as { n: number }[])[0].n).toBe(0);
  });
});

describe('saved segments', () => {
  it('creates, reads, pages, edits with If-Match and deletes, each audited; the preview counts and samples the newest 10', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    for (let i = 0; i < 12; i++) await subscriber(key, { email: `p${i}@x.com`, attributes: { plan: 'pro' } }, `2026-01-${String(i + 1).padStart(2, '0')}T00:00:00Z`);
    await subscriber(key, { email: 'free@x.com', attributes: { plan: 'free' } });
    const rules = { all: [{ field: 'attributes.plan', op: 'eq', value: 'pro' }] };
    const created = await app.call('post', '/v1/segments', key).send({ name: 'Pro', rules }).expect(201);
    expect(created.headers.etag).toBe('"v1"');
    expect(created.headers.location).toBe(`/v1/segments/${created.body.id}`);
    expect(created.body).toMatchObject({ name: 'Pro', description: '', rules, version: 1 });
    const id = created.body.id as string;
    await app.call('post', '/v1/segments', key).send({ name: 'Other', rules: { any: [] } }).expect(201);
    expect((await app.call('post', '/v1/segments', key).send({ name: 'PRO', rules }).expect(409)).body.code).toBe('ALREADY_EXISTS');

    const shown = await app.call('get', `/v1/segments/${id}/preview`, key).expect(200);
    expect(shown.body.count).toBe(12);
    expect(shown.body.sample.map((s: { email: string }) => s.email)).toEqual(Array.from({ length: 10 }, (_, i) => `p${11 - i}@x.com`));

    const first = await app.call('get', '/v1/segments?limit=1', key).expect(200);
    expect(first.body.items.map((s: { name: string }) => s.name)).toEqual(['Other']);
    const second = await app.call('get', `/v1/segments?limit=1&cursor=${encodeURIComponent(first.body.nextCursor)}`, key).expect(200);
    expect(second.body.items.map((s: { name: string }) => s.name)).toEqual(['Pro']);
    expect(second.body.nextCursor).toBeNull();
    expect((await app.call('get', '/v1/segments?namePrefix=pr', key).expect(200)).body.items).toHaveLength(1);

    expect((await app.call('get', `/v1/segments/${id}`, key).expect(200)).headers.etag).toBe('"v1"');
    const edited = await app.call('patch', `/v1/segments/${id}`, key).set('If-Match', '"v1"').send({ rules: { all: [{ field: 'attributes.plan', op: 'eq', value: 'free' }] }, description: 'Free now' }).expect(200);
    expect(edited.headers.etag).toBe('"v2"');
    expect(edited.body).toMatchObject({ version: 2, description: 'Free now', name: 'Pro' });
    expect((await app.call('get', `/v1/segments/${id}/preview`, key).expect(200)).body.count).toBe(1);
    expect((await app.call('patch', `/v1/segments/${id}`, key).set('If-Match', '"v1"').send({ name: 'Stale' }).expect(412)).body.code).toBe('PRECONDITION_FAILED');
    await app.call('delete', `/v1/segments/${id}`, key).set('If-Match', '"v1"').expect(412);
    await app.call('delete', `/v1/segments/${id}`, key).set('If-Match', '"v2"').expect(204);
    await app.call('get', `/v1/segments/${id}`, key).expect(404);
    await app.call('get', `/v1/segments/${id}/preview`, key).expect(404);
    const events = await AuditEvent.findAll({ where: { tenantId: tenant.id, entityId: id }, order: [['id', 'ASC']] });
    expect(events.map((e) => e.action)).toEqual(['audience.segment.created', 'audience.segment.updated', 'audience.segment.deleted']);
    expect(events[1].before).toMatchObject({ version: 1, rules });
  });

  it('refuses bad rules with their path, unknown lists, wrong bodies; writes nothing', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    const bad = await app.call('post', '/v1/segments', key).send({ name: 'Bad', rules: { all: [{ field: 'status', op: 'eq', value: 'active' }, { field: 'attributes.plan', op: 'between', value: 1 }] } }).expect(422);
    expect(bad.body).toMatchObject({ code: 'INVALID_SEGMENT_RULE', errors: [{ path: '/rules/all/1/op' }] });
    let deep: object = { field: 'status', op: 'eq', value: 'active' };
    for (let i = 0; i < 6; i++) deep = { all: [deep] };
    expect((await app.call('post', '/v1/segments', key).send({ name: 'Deep', rules: deep }).expect(422)).body.errors[0].path).toBe('/rules/all/0/all/0/all/0/all/0/all/0');
    const unknown = randomUUID();
    const missing = await app.call('post', '/v1/segments', key).send({ name: 'Lists', rules: { all: [{ any: [{ field: 'list', op: 'in', value: [unknown] }] }] } }).expect(422);
    expect(missing.body).toMatchObject({ code: 'UNKNOWN_LIST', errors: [{ path: '/rules/all/0/any/0/value/0' }] });
    expect((await preview(key, { all: [{ field: 'createdAt', op: 'gt', value: '2026-02-30T00:00:00Z' }] }).expect(422)).body.errors[0].path).toBe('/rules/all/0/value');
    expect((await preview(key, []).expect(422)).body.code).toBe('INVALID_SEGMENT_RULE');
    await app.call('post', '/v1/segments', key).send({ name: 'No rules' }).expect(400);
    await app.call('post', '/v1/segments', key).send({ name: '', rules: { all: [] } }).expect(400);
    await app.call('post', '/v1/segments/preview', key).send({ rules: { all: [] }, extra: 1 }).expect(400);
    await app.call('get', '/v1/segments/not-a-uuid', key).expect(400);
    await app.call('patch', `/v1/segments/${randomUUID()}`, key).send({ name: 'x' }).expect(404);

    const s = await app.call('post', '/v1/segments', key).send({ name: 'Good', rules: { all: [] } }).expect(201);
    await app.call('patch', `/v1/segments/${s.body.id}`, key).send({}).expect(400);
    expect((await app.call('patch', `/v1/segments/${s.body.id}`, key).send({ rules: { any: [{ field: 'x' }] } }).expect(422)).body.errors[0].path).toBe('/rules/any/0/field');
    expect((await app.call('get', `/v1/segments/${s.body.id}`, key).expect(200)).body.version).toBe(1);
    expect(await Segment.count({ where: { tenantId: tenant.id } })).toBe(1);
    expect(await AuditEvent.count({ where: { tenantId: tenant.id, action: 'audience.segment.updated' } })).toBe(0);
  });

  it('stops a preview that runs over its budget with 422 SEGMENT_TOO_EXPENSIVE', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    await app.sequelize.query(`INSERT INTO subscribers (tenant_id, id, email, attributes)
      SELECT $1, gen_random_uuid(), 'bulk' || g || '@x.com', jsonb_build_object('note', 'row ' || g) FROM generate_series(1, 30000) g`, { bind: [tenant.id] });
    const rules = { all: [{ field: 'attributes.note', op: 'contains', value: 'ROW 2' }] };
    expect((await preview(key, rules).expect(200)).body.count).toBe(11_111);
    const tight = await startTestApp({ SEGMENT_PREVIEW_BUDGET_MS: '1' });
    try {
      const res = await tight.call('post', '/v1/segments/preview', key).send({ rules }).expect(422);
      expect(res.body.code).toBe('SEGMENT_TOO_EXPENSIVE');
    } finally {
      await tight.close();
    }
  });
});

describe('one preview per tenant at a time', () => {
  it('answers 429 with Retry-After while another preview of the tenant runs, and counts once it is over; other tenants are not held up', async () => {
    const { key, tenant } = await buildCaller(['audience.*']);
    const { key: other } = await buildCaller(['audience.*']);
    await app.call('post', '/v1/subscribers', key).send({ email: 'p@x.com' }).expect(201);
    const rules = { all: [{ field: 'status', op: 'eq', value: 'active' }] };
    // A preview in flight holds the tenant's preview lock (as previewSegment takes it) until its transaction ends.
    const lock = await holdAudienceLock(app.sequelize, tenant.id);
    try {
      const busy = await preview(key, rules).expect(429);
      expect(busy.body.code).toBe('RATE_LIMITED');
      expect(busy.headers['retry-after']).toBe('1');
      expect((await preview(other, rules).expect(200)).body.count).toBe(0);
    } finally {
      await lock.release();
    }
    expect((await preview(key, rules).expect(200)).body.count).toBe(1);
  });
});

describe('tenants and permissions', () => {
  it('never shows, edits or counts another tenant\'s segments and lists', async () => {
    const { key: mine } = await buildCaller(['audience.*']);
    const { key: theirs } = await buildCaller(['audience.*']);
    const theirList = await list(theirs, 'Theirs');
    const s = await app.call('post', '/v1/segments', theirs).send({ name: 'Theirs', rules: { all: [{ field: 'list', op: 'in', value: [theirList] }] } }).expect(201);
    await app.call('get', `/v1/segments/${s.body.id}`, mine).expect(404);
    await app.call('get', `/v1/segments/${s.body.id}/preview`, mine).expect(404);
    await app.call('patch', `/v1/segments/${s.body.id}`, mine).send({ name: 'Mine' }).expect(404);
    await app.call('delete', `/v1/segments/${s.body.id}`, mine).expect(404);
    expect((await app.call('get', '/v1/segments', mine).expect(200)).body.items).toEqual([]);
    const refused = await app.call('post', '/v1/segments', mine).send({ name: 'Borrowed', rules: { all: [{ field: 'list', op: 'not_in', value: [theirList] }] } }).expect(422);
    expect(refused.body.code).toBe('UNKNOWN_LIST');
  });

  it('lets audience.read list, read and preview; only audience.write creates, edits and deletes', async () => {
    const { key: admin, tenant } = await buildCaller(['audience.*']);
    const s = await app.call('post', '/v1/segments', admin).send({ name: 'S', rules: { all: [] } }).expect(201);
    const { key: viewer } = await buildCaller(['audience.read'], tenant);
    const { key: none } = await buildCaller(['files.read'], tenant);
    await app.call('get', '/v1/segments', viewer).expect(200);
    await app.call('get', `/v1/segments/${s.body.id}`, viewer).expect(200);
    await app.call('get', `/v1/segments/${s.body.id}/preview`, viewer).expect(200);
    await preview(viewer, { all: [] }).expect(200);
    for (const [method, url] of [['post', '/v1/segments'], ['patch', `/v1/segments/${s.body.id}`], ['delete', `/v1/segments/${s.body.id}`]] as const) {
      const res = await app.call(method, url, viewer).send(method === 'delete' ? undefined : { name: 'T', rules: { all: [] } }).expect(403);
      expect(res.body.permission).toBe('audience.write');
    }
    for (const [method, url] of [['get', '/v1/segments'], ['get', `/v1/segments/${s.body.id}`], ['get', `/v1/segments/${s.body.id}/preview`], ['post', '/v1/segments/preview']] as const) {
      expect((await app.call(method, url, none).send(method === 'post' ? { rules: { all: [] } } : undefined).expect(403)).body.permission).toBe('audience.read');
    }
    expect((await app.call('get', `/v1/segments/${s.body.id}`, admin).expect(200)).body.name).toBe('S');
  });
});
