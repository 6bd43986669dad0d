// Tenancy on every read: a row is found only inside the caller's tenant, so another tenant's id answers
// 404 exactly as an id that does not exist.
import { Attributes, FindOptions, Model, ModelStatic, WhereOptions } from 'sequelize';
import { notFound } from './problems';

/**
 * The row of `model` in `tenantId` with that id (or matching `where`), or 404 NOT_FOUND. `what` names it
 * in the refusal: a noun, followed by the id ("Approval flow" → "Approval flow <id> was not found"), or, with
 * `where`, the whole name ("Role auditor").
 */
export async function findInTenant<M extends Model>(
  model: ModelStatic<M>, tenantId: string, idOrWhere: string | WhereOptions<Attributes<M>>, what: string,
  opts: Omit<FindOptions<Attributes<M>>, 'where'> = {},
): Promise<M> {
  const where = typeof idOrWhere === 'string' ? { id: idOrWhere } : idOrWhere;
  const row = await model.findOne({ ...opts, where: { ...where, tenantId } as WhereOptions<Attributes<M>> });
  if (!row) throw notFound(typeof idOrWhere === 'string' ? `${what} ${idOrWhere}` : what);
  return row;
}
