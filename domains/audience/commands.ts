// Subscribers and lists: the list filters (the routes page them) and the commands (each with its audit event in
// its transaction) the audience API carries out. Routes pass the request and the caller; nothing here knows HTTP.
import { literal, Op, Sequelize, Transaction, UniqueConstraintError, WhereOptions } from 'sequelize';
import { v7 as uuidv7 } from 'uuid';
import { Subscriber, SubscriberList } from '../../db/models/audience';
import { recordAudit } from '../../lib/audit';
import { ApiError, notFound } from '../../lib/problems';
import { findInTenant } from '../../lib/tenancy';
import type { SubscriberFilters } from '../../workflows/audience.api';
import { auditBy, Caller, CommandDeps } from '../command';
import { refuseIfAwaitedByCampaigns } from './in-use';
import { eraseDeletedSubscriber, eraseSubscriber, likePrefix, normalizeEmail, type SubscriberStatus } from './subscribers';

type Attributes = Record<string, string | number | boolean>;

export const MAX_MEMBERS_PER_REQUEST = 10_000;

// ---- subscribers ----

export type { SubscriberFilters };

/** `name:value` → the attribute's name and the JSON values it matches: the text itself, and the number or boolean it reads as. */
export function attributeFilter(pair: string): { name: string; values: (string | number | boolean)[] } {
  const at = pair.indexOf(':');
  const name = pair.slice(0, at);
  const text = pair.slice(at + 1);
  const values: (string | number | boolean)[] = [text];
  if (text === 'true' || text === 'false') values.push(text === 'true');
  else if (text.trim() !== '' && Number.isFinite(Number(text))) values.push(Number(text));
  return { name, values };
}

/** The tenant's subscribers matching every filter given. */
export function subscriberWhere(sequelize: Sequelize, tenantId: string, f: SubscriberFilters): WhereOptions {
  const and: WhereOptions[] = [{ tenantId }];
  if (f.status) and.push({ status: f.status });
  if (f.emailPrefix) and.push({ email: { [Op.like]: likePrefix(normalizeEmail(f.emailPrefix)) } });
  for (const pair of f.attribute ?? []) {
    const { name, values } = attributeFilter(pair);
    and.push({ [Op.or]: values.map((v) => ({ attributes: { [Op.contains]: { [name]: v } } })) });
  }
  if (f.listId) {
    and.push({ id: { [Op.in]: literal(`(SELECT subscriber_id FROM list_members WHERE tenant_id = ${sequelize.escape(tenantId)} AND list_id = ${sequelize.escape(f.listId)})`) } });
  }
  return { [Op.and]: and };
}

export const findSubscriber = (tenantId: string, id: string, transaction?: Transaction): Promise<Subscriber> =>
  findInTenant(Subscriber, tenantId, id, 'Subscriber', { transaction, lock: transaction ? transaction.LOCK.UPDATE : undefined });

const subscriberAudit = (s: Subscriber) => ({ email: s.email, name: s.name, status: s.status, attributes: s.attributes });

async function assertListsExist(tenantId: string, listIds: string[], transaction: Transaction): Promise<void> {
  if (!listIds.length) return;
  const found = await SubscriberList.findAll({ where: { tenantId, id: listIds }, attributes: ['id'], transaction });
  const missing = listIds.filter((id) => !found.some((l) => l.id === id));
  if (missing.length) {
    throw new ApiError(422, 'UNKNOWN_LIST', `No list ${missing.join(', ')} in this tenant`, { errors: missing.map((id) => ({ path: '/requestBody/listIds', message: `no list ${id}` })) });
  }
}

function duplicateEmail(email: string): ApiError {
  return new ApiError(409, 'ALREADY_EXISTS', `A subscriber with the address ${email} exists already`);
}

export async function createSubscriber(deps: CommandDeps, c: Caller, body: { email: string; name?: string | null; status?: SubscriberStatus; attributes?: Attributes; listIds?: string[] }): Promise<Subscriber> {
  const email = normalizeEmail(body.email);
  try {
    return await deps.sequelize.transaction(async (transaction) => {
      await assertListsExist(c.tenantId, body.listIds ?? [], transaction);
      const s = await Subscriber.create({ tenantId: c.tenantId, id: uuidv7(), email, name: body.name ?? null, status: body.status ?? 'active', attributes: body.attributes ?? {} }, { transaction });
      if (body.listIds?.length) {
        await deps.sequelize.query('INSERT INTO list_members (tenant_id, list_id, subscriber_id) SELECT $1, unnest($2::uuid[]), $3', { bind: [c.tenantId, body.listIds, s.id], transaction });
      }
      await recordAudit({ ...auditBy(c), action: 'audience.subscriber.created', entityType: 'subscriber', entityId: s.id, after: { ...subscriberAudit(s), listIds: body.listIds ?? [] } }, transaction);
      return s;
    });
  } catch (err) {
    if (err instanceof UniqueConstraintError) throw duplicateEmail(email);
    throw err;
  }
}

export async function updateSubscriber(deps: CommandDeps, c: Caller, id: string, body: { email?: string; name?: string | null; status?: SubscriberStatus; attributes?: Attributes }): Promise<Subscriber> {
  try {
    return await deps.sequelize.transaction(async (transaction) => {
      const s = await findSubscriber(c.tenantId, id, transaction);
      if (s.erasedAt) throw new ApiError(409, 'SUBSCRIBER_ERASED', 'The subscriber was erased; its data cannot be changed');
      const before = subscriberAudit(s);
      if (body.email !== undefined) s.email = normalizeEmail(body.email);
      if (body.name !== undefined) s.name = body.name;
      if (body.status !== undefined) s.status = body.status;
      if (body.attributes !== undefined) s.attributes = body.attributes;
      await s.save({ transaction });
      await recordAudit({ ...auditBy(c), action: 'audience.subscriber.updated', entityType: 'subscriber', entityId: s.id, before, after: subscriberAudit(s) }, transaction);
      return s;
    });
  } catch (err) {
    if (err instanceof UniqueConstraintError) throw duplicateEmail(normalizeEmail(body.email ?? ''));
    throw err;
  }
}

export async function deleteSubscriber(deps: CommandDeps, c: Caller, id: string): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const s = await findSubscriber(c.tenantId, id, transaction);
    await s.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'audience.subscriber.deleted', entityType: 'subscriber', entityId: s.id, before: s.erasedAt ? { erased: true } : subscriberAudit(s) }, transaction);
  });
}

/**
 * Erases the subscriber's personal data (see eraseSubscriber) with its audit event, which names no personal data.
 * A subscriber deleted earlier has no row, but its audit events and what else names its address still hold it: those
 * are erased (eraseDeletedSubscriber) and the answer is null.
 */
export async function eraseSubscriberData(deps: CommandDeps, c: Caller, id: string): Promise<Subscriber | null> {
  const audit = (transaction: Transaction) => recordAudit({ ...auditBy(c), action: 'audience.subscriber.erased', entityType: 'subscriber', entityId: id }, transaction);
  const erasedAlready = () => new ApiError(409, 'SUBSCRIBER_ERASED', 'The subscriber was erased already');
  const s = await Subscriber.findOne({ where: { tenantId: c.tenantId, id } });
  if (s?.erasedAt) throw erasedAlready();
  if (s) {
    if (await eraseSubscriber(deps.sequelize, c.tenantId, id, audit)) return s.reload();
    // Nothing erased: another erase was first (the row says so), or the row was deleted meanwhile — then it is
    // erased as a deleted subscriber, never answered "erased already" with its traces left.
    if (await Subscriber.count({ where: { tenantId: c.tenantId, id } })) throw erasedAlready();
  }
  const outcome = await eraseDeletedSubscriber(deps.sequelize, c.tenantId, id, audit);
  if (outcome === 'unknown') throw notFound(`Subscriber ${id}`);
  if (outcome === 'erased') throw erasedAlready();
  return null;
}

// ---- lists ----

const MEMBER_COUNT = literal('(SELECT count(*)::int FROM list_members m WHERE m.tenant_id = "SubscriberList"."tenant_id" AND m.list_id = "SubscriberList"."id")');
/** A list's columns and its member count (presentList reads it). */
export const LIST_ATTRIBUTES = { include: [[MEMBER_COUNT, 'memberCount']] as [typeof MEMBER_COUNT, string][] };

export type ListWithCount = SubscriberList & { memberCount: number };
export const memberCountOf = (l: SubscriberList): number => Number(l.get('memberCount') ?? 0);

/** The tenant's lists (by name prefix, if given). */
export const listWhere = (tenantId: string, f: { namePrefix?: string }): WhereOptions =>
  (f.namePrefix ? { tenantId, name: { [Op.iLike]: likePrefix(f.namePrefix) } } : { tenantId });

export const findList = (tenantId: string, id: string): Promise<SubscriberList> => findInTenant(SubscriberList, tenantId, id, 'List', { attributes: LIST_ATTRIBUTES });

function duplicateName(name: string): ApiError {
  return new ApiError(409, 'ALREADY_EXISTS', `A list named "${name}" exists already`);
}

export async function createList(deps: CommandDeps, c: Caller, body: { name: string; description?: string }): Promise<SubscriberList> {
  try {
    const id = await deps.sequelize.transaction(async (transaction) => {
      const l = await SubscriberList.create({ tenantId: c.tenantId, id: uuidv7(), name: body.name, description: body.description ?? '' }, { transaction });
      await recordAudit({ ...auditBy(c), action: 'audience.list.created', entityType: 'list', entityId: l.id, after: { name: l.name, description: l.description } }, transaction);
      return l.id;
    });
    return findList(c.tenantId, id);
  } catch (err) {
    if (err instanceof UniqueConstraintError) throw duplicateName(body.name);
    throw err;
  }
}

export async function updateList(deps: CommandDeps, c: Caller, id: string, body: { name?: string; description?: string }): Promise<SubscriberList> {
  try {
    await deps.sequelize.transaction(async (transaction) => {
      const l = await findInTenant(SubscriberList, c.tenantId, id, 'List', { transaction, lock: transaction.LOCK.UPDATE });
      const before = { name: l.name, description: l.description };
      if (body.name !== undefined) l.name = body.name;
      if (body.description !== undefined) l.description = body.description;
      await l.save({ transaction });
      await recordAudit({ ...auditBy(c), action: 'audience.list.updated', entityType: 'list', entityId: l.id, before, after: { name: l.name, description: l.description } }, transaction);
    });
  } catch (err) {
    if (err instanceof UniqueConstraintError) throw duplicateName(body.name ?? '');
    throw err;
  }
  return findList(c.tenantId, id);
}

export async function deleteList(deps: CommandDeps, c: Caller, id: string): Promise<void> {
  await deps.sequelize.transaction(async (transaction) => {
    const l = await findInTenant(SubscriberList, c.tenantId, id, 'List', { transaction, lock: transaction.LOCK.UPDATE });
    await refuseIfAwaitedByCampaigns(deps.sequelize, 'list', c.tenantId, l.id, transaction);
    await l.destroy({ transaction });
    await recordAudit({ ...auditBy(c), action: 'audience.list.deleted', entityType: 'list', entityId: l.id, before: { name: l.name } }, transaction);
  });
}

export interface MembersInput {
  subscriberIds?: string[];
  emails?: string[];
}

/** The tenant's (not erased) subscribers named by id or address, and the names that match none. */
async function resolveMembers(sequelize: Sequelize, tenantId: string, body: MembersInput, transaction: Transaction) {
  const ids = [...new Set(body.subscriberIds ?? [])];
  const emails = [...new Set((body.emails ?? []).map(normalizeEmail))];
  if (ids.length + emails.length > MAX_MEMBERS_PER_REQUEST) {
    throw new ApiError(400, 'VALIDATION_FAILED', `At most ${MAX_MEMBERS_PER_REQUEST} subscribers per request`, { errors: [{ path: '/requestBody', message: `at most ${MAX_MEMBERS_PER_REQUEST} subscriberIds and emails in all` }] });
  }
  const [rows] = await sequelize.query(`SELECT id, email FROM subscribers WHERE tenant_id = $1 AND erased_at IS NULL
    AND (id = ANY($2::uuid[]) OR email = ANY($3::text[]))`, { bind: [tenantId, ids, emails], transaction });
  const found = rows as { id: string; email: string }[];
  const foundIds = new Set(found.map((r) => r.id));
  const foundEmails = new Set(found.map((r) => r.email));
  const notFound = [...ids.filter((i) => !foundIds.has(i)), ...emails.filter((e) => !foundEmails.has(e))];
  return { ids: found.map((r) => r.id), notFound };
}

const lockList = (tenantId: string, id: string, transaction: Transaction): Promise<SubscriberList> =>
  findInTenant(SubscriberList, tenantId, id, 'List', { transaction, lock: transaction.LOCK.SHARE });

export async function addListMembers(deps: CommandDeps, c: Caller, listId: string, body: MembersInput): Promise<{ added: number; alreadyMembers: number; notFound: string[] }> {
  return deps.sequelize.transaction(async (transaction) => {
    await lockList(c.tenantId, listId, transaction);
    const { ids, notFound } = await resolveMembers(deps.sequelize, c.tenantId, body, transaction);
    const [inserted] = await deps.sequelize.query(`INSERT INTO list_members (tenant_id, list_id, subscriber_id) SELECT $1, $2, unnest($3::uuid[])
      ON CONFLICT DO NOTHING RETURNING subscriber_id`, { bind: [c.tenantId, listId, ids], transaction });
    const added = (inserted as unknown[]).length;
    if (added) await recordAudit({ ...auditBy(c), action: 'audience.list.members_added', entityType: 'list', entityId: listId, after: { added, subscriberIds: (inserted as { subscriber_id: string }[]).map((r) => r.subscriber_id) } }, transaction);
    return { added, alreadyMembers: ids.length - added, notFound };
  });
}

export async function removeListMembers(deps: CommandDeps, c: Caller, listId: string, body: MembersInput): Promise<{ removed: number }> {
  return deps.sequelize.transaction(async (transaction) => {
    await lockList(c.tenantId, listId, transaction);
    const { ids } = await resolveMembers(deps.sequelize, c.tenantId, body, transaction);
    const [deleted] = await deps.sequelize.query(`DELETE FROM list_members WHERE tenant_id = $1 AND list_id = $2 AND subscriber_id = ANY($3::uuid[]) RETURNING subscriber_id`,
      { bind: [c.tenantId, listId, ids], transaction });
    const removed = (deleted as unknown[]).length;
    if (removed) await recordAudit({ ...auditBy(c), action: 'audience.list.members_removed', entityType: 'list', entityId: listId, before: { subscriberIds: (deleted as { subscriber_id: string }[]).map((r) => r.subscriber_id) }, after: { removed } }, transaction);
    return { removed };
  });
}
