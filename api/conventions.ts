// Conventions shared by every domain: cursor pagination, ETag/If-Match, sending a resource.
import Koa from 'koa';
import { Attributes, FindAttributeOptions, Includeable, Model, ModelStatic, Op, WhereOptions } from 'sequelize';
import { ApiError, validationFailed } from '../lib/problems';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

type Order = [string, 'ASC' | 'DESC'][];

function encodeCursor(values: unknown[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

function decodeCursor(cursor: string, n: number): unknown[] {
  try {
    const values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(values) && values.length === n) return values;
  } catch {
    // fall through to the 400 below
  }
  throw validationFailed([{ path: '/query/cursor', message: 'is not a cursor returned by this list' }]);
}

/** (a, b) < (x, y) in the list's order, written out so Postgres can use the index. */
function after(order: Order, values: unknown[]): WhereOptions {
  const ors = order.map(([col, dir], i) => {
    const and: Record<string, unknown> = {};
    for (let j = 0; j < i; j++) and[order[j][0]] = values[j];
    and[col] = { [dir === 'DESC' ? Op.lt : Op.gt]: values[i] };
    return and;
  });
  return { [Op.or]: ors };
}

type PageOptions = { where: WhereOptions; limit?: number; cursor?: string; order?: Order; include?: Includeable[]; attributes?: FindAttributeOptions };

/**
 * Keyset pagination: stable under inserts, O(page) whatever the offset. The cursor holds the sort
 * values of the last item; `order` must end in a unique column.
 */
export async function paginate<M extends Model>(model: ModelStatic<M>, opts: PageOptions): Promise<Page<M>> {
  return findPage(model, opts, false);
}

/** A list row as Postgres returned it: its attributes (and any computed ones) by name, no model instance. */
export type Row<M extends Model> = Attributes<M> & Record<string, unknown>;

/**
 * `paginate` for a list read often and presented as is: plain rows, without building a model instance
 * per row, which costs the API more CPU than the query itself (~3 ms for a 50-row page of approval flows).
 */
export async function paginateRows<M extends Model>(model: ModelStatic<M>, opts: PageOptions): Promise<Page<Row<M>>> {
  return findPage(model, opts, true);
}

async function findPage<M extends Model>(model: ModelStatic<M>, opts: PageOptions, raw: false): Promise<Page<M>>;
async function findPage<M extends Model>(model: ModelStatic<M>, opts: PageOptions, raw: true): Promise<Page<Row<M>>>;
async function findPage<M extends Model>(model: ModelStatic<M>, opts: PageOptions, raw: boolean): Promise<Page<M | Row<M>>> {
  const order = opts.order ?? [['createdAt', 'DESC'], ['id', 'DESC']];
  const limit = opts.limit ?? 50;
  const where: WhereOptions = opts.cursor ? { [Op.and]: [opts.where, after(order, decodeCursor(opts.cursor, order.length))] } : opts.where;
  const rows: (M | Row<M>)[] = await model.findAll({ where, order, limit: limit + 1, include: opts.include, attributes: opts.attributes, raw });
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  const nextCursor = rows.length > limit && last
    ? encodeCursor(order.map(([col]) => { const v = last instanceof Model ? last.get(col) : last[col]; return v instanceof Date ? v.toISOString() : v; }))
    : null;
  return { items, nextCursor };
}

/**
 * A template version list's page size, its default and its largest (openapi.yaml's VersionLimit; other lists take up
 * to 200): each version carries the whole template (a document template's parts can be up to a million characters),
 * so a page stays within tens of MB. Older versions are on the pages after (documents rendered from them name them).
 */
export const VERSION_LIST_LIMIT = 20;

/**
 * One template's versions (`where` names them: `version` is unique among them), a page at a time, newest first, like
 * every other list: `limit` (default VERSION_LIST_LIMIT) and the `cursor` of the page before.
 */
export function paginateVersions<M extends Model>(model: ModelStatic<M>, where: WhereOptions, query: { limit?: number; cursor?: string }): Promise<Page<M>> {
  return paginate(model, { where, limit: query.limit ?? VERSION_LIST_LIMIT, cursor: query.cursor, order: [['version', 'DESC']] });
}

export function page<M, T>(p: Page<M>, present: (m: M) => T): Page<T> {
  return { items: p.items.map(present), nextCursor: p.nextCursor };
}

/**
 * The ETag of a version of a resource (users, roles, purchase orders, templates): strong, because If-Match
 * compares strongly (RFC 9110 §13.1.1: a weak tag never matches), and one format for every resource.
 */
export const versionEtag = (version: number) => `"v${version}"`;

/**
 * If-Match, checked against the version about to be changed: optional; when sent it must name that version,
 * or nothing is written (412). `W/"<version>"`, the ETag users, roles and purchase orders were served with
 * before, still matches for this release, so a client holding one is not refused after the upgrade.
 */
export function checkIfMatch(ctx: Koa.Context, version: number): void {
  const ifMatch = ctx.get('if-match');
  if (!ifMatch || ifMatch.trim() === '*') return;
  const current = versionEtag(version);
  const accepted = [current, `W/"${version}"`];
  if (!ifMatch.split(',').some((t) => accepted.includes(t.trim()))) {
    throw new ApiError(412, 'PRECONDITION_FAILED', `If-Match ${ifMatch} does not match the current version ${current}; read it again`);
  }
}

/** The request's If-Match as a command's precondition (domains/command.ts). */
export const ifMatch = (ctx: Koa.Context) => (version: number) => checkIfMatch(ctx, version);

/** Sends a resource: status, body, and the Location / ETag headers every route sets the same way. */
export function respond(ctx: Koa.Context, body: unknown, opts: { status?: number; location?: string; etag?: string } = {}): void {
  ctx.status = opts.status ?? 200;
  if (opts.location) ctx.set('Location', opts.location);
  if (opts.etag) ctx.set('ETag', opts.etag);
  ctx.body = body;
}
