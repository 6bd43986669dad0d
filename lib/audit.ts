// Writes audit events, always with the change they record: in its transaction (the API's commands, activities
// by event key), or in the same statement (createWithAudit, auditInsertSql, auditCtes in a data-modifying CTE).
// An audit event whose action is a domain event (lib/events.ts) writes that event with it, the same way.
import { Attributes, CreationAttributes, DataTypes, Model, ModelStatic, QueryTypes, Transaction, UpdateOptions } from 'sequelize';
import { AuditEvent } from '../db/models/audit';
import { AuditAction } from './audit-actions';
import { DomainEventInput, EVENTS_FROM_AUDIT, eventInsertSql, eventsOfAudits, recordEvents } from './events';

export interface Actor {
  type: 'user' | 'api_key' | 'system';
  id: string | null;
}

/** Who sent a command a workflow carries out (an Update's argument), so the activity that persists the change audits it. */
export interface CommandAuthor {
  actor: Actor;
  requestId: string | null;
}

export interface AuditInput {
  tenantId: string;
  actor: Actor;
  action: AuditAction;
  entityType: string;
  entityId: string;
  before?: unknown;
  after?: unknown;
  requestId?: string | null;
  workflowId?: string | null;
  /** Natural key: an activity retried after a crash writes its event once. */
  eventKey?: string;
}

function auditRow(e: AuditInput) {
  return {
    tenantId: e.tenantId, actorType: e.actor.type, actorId: e.actor.id, action: e.action,
    entityType: e.entityType, entityId: e.entityId, before: e.before ?? null, after: e.after ?? null,
    requestId: e.requestId ?? null, workflowId: e.workflowId ?? null, eventKey: e.eventKey ?? null,
  };
}

/**
 * Writes an audit event in `transaction`, the one that writes the change it records (required: an event
 * written after the change commits is lost with a crash between the two, one written before it may record
 * a change that never happened). Keyed by `eventKey`, a retried activity writes it once.
 */
export async function recordAudit(e: AuditInput, transaction: Transaction): Promise<void> {
  await recordAudits([e], transaction);
}

/** Several audit events in one INSERT, in the change's transaction (see recordAudit). */
export async function recordAudits(events: AuditInput[], transaction: Transaction): Promise<void> {
  const keyed = events.filter((e) => e.eventKey);
  const unkeyed = events.filter((e) => !e.eventKey);
  if (keyed.length) await AuditEvent.bulkCreate(keyed.map(auditRow), { ignoreDuplicates: true, transaction });
  if (unkeyed.length) await AuditEvent.bulkCreate(unkeyed.map(auditRow), { transaction });
  await recordEvents(eventsOfAudits(events), transaction);
}

/**
 * Updates the rows of `model` that `where` matches and, if any changed, writes `audit` — in one transaction,
 * so a state change is never without its event nor an event without its change (a guarded update that a
 * retry finds already done changes nothing and audits nothing again; the event key covers a crash after
 * commit). Without `audit`, a plain update. Answers how many rows changed.
 */
export async function updateWithAudit<M extends Model>(model: ModelStatic<M>, values: Partial<Attributes<M>>, where: UpdateOptions<Attributes<M>>['where'], audit?: AuditInput): Promise<number> {
  if (!audit) return (await model.update(values, { where }))[0];
  return model.sequelize!.transaction(async (transaction) => {
    const [changed] = await model.update(values, { where, transaction });
    if (changed) await recordAudit(audit, transaction);
    return changed;
  });
}

/** Columns and placeholders of one row of `model`, its values appended to `bind` (JSON columns sent as jsonb text). */
function rowParts(model: ModelStatic<Model>, values: Record<string, unknown>, bind: unknown[]) {
  const columns: string[] = [];
  const params: string[] = [];
  for (const [attr, value] of Object.entries(values)) {
    const def = model.getAttributes()[attr];
    if (!def || value === undefined || (def.autoIncrement && value === null)) continue;
    const json = def.type instanceof DataTypes.JSON || def.type instanceof DataTypes.JSONB;
    bind.push(json && value !== null ? JSON.stringify(value) : value);
    columns.push(`"${def.field ?? attr}"`);
    params.push(`$${bind.length}${json ? '::jsonb' : ''}`);
  }
  return { columns, params };
}

/**
 * `"table" (columns) VALUES (…), (…)` for rows of `model` that all set the same attributes, values appended
 * to `bind`: a part of one statement that writes several tables at once (a data-modifying CTE).
 */
export function insertRowsSql(model: ModelStatic<Model>, rows: Record<string, unknown>[], bind: unknown[]): string {
  const parts = rows.map((r) => rowParts(model, r, bind));
  return `"${model.getTableName() as string}" (${parts[0].columns.join(', ')}) VALUES ${parts.map((p) => `(${p.params.join(', ')})`).join(', ')}`;
}

const auditInsert = (events: AuditInput[], bind: unknown[], at: Date) =>
  `INSERT INTO ${insertRowsSql(AuditEvent, events.map((e) => ({ ...auditRow(e), createdAt: at })), bind)} ON CONFLICT DO NOTHING`;

/**
 * The INSERT of audit events keyed by `eventKey` (a retry writes none twice), with the domain events they are
 * (lib/events.ts), as one statement of its own.
 */
export function auditInsertSql(events: AuditInput[], bind: unknown[], at = new Date()): string {
  const domainEvents = eventsOfAudits(events);
  const audited = auditInsert(events, bind, at);
  return domainEvents.length ? `WITH evented AS (${eventInsertSql(domainEvents, bind, { at })}) ${audited}` : audited;
}

/**
 * The same as parts of a data-modifying CTE (`name AS (…)`), for a statement that writes the change too. `also`
 * are domain events that are no audit event; `mergeData` answers an SQL jsonb expression merged into every event's data
 * (called only when there are events, so its parameters are bound only when used).
 */
export function auditCtes(events: AuditInput[], bind: unknown[], opts: { at?: Date; also?: DomainEventInput[]; mergeData?: () => string } = {}): string[] {
  const at = opts.at ?? new Date();
  const parts = events.length ? [`audited AS (${auditInsert(events, bind, at)})`] : [];
  const domainEvents = [...eventsOfAudits(events), ...(opts.also ?? [])];
  if (domainEvents.length) parts.push(`evented AS (${eventInsertSql(domainEvents, bind, { at, mergeData: opts.mergeData?.() })})`);
  return parts;
}

/** A row written together with another (createWithAudit's `also`). */
export interface RowOf {
  model: ModelStatic<Model>;
  values: Record<string, unknown>;
}

/**
 * A condition createWithAudit's statement checks (`sql` appends its parameters to `bind` and answers an SQL boolean):
 * false refuses the statement, every write of it taken back, and createWithAudit throws `refused()`. The check is
 * then no round trip of its own (e.g. a reminder's users being active users of its tenant).
 */
export interface WriteCheck {
  sql(bind: unknown[]): string;
  refused(): Error;
}

/** SQLSTATE of docket_refuse() (migration 0038). */
const REFUSED = 'DK001';

/**
 * Creates a row and its audit event in ONE statement (a data-modifying CTE is atomic on its own), the
 * pattern of every "write the row, then start its workflow" command: one round trip instead of
 * BEGIN / INSERT / INSERT / COMMIT, which measurably limits how fast the API starts workflows
 * (bench/README.md, suite foundation). Model defaults and timestamps are applied as `create()` would.
 * `also` are rows written in the same statement: the workflow's start intent (lib/temporal.ts startIntent).
 * `check`: see WriteCheck.
 */
export async function createWithAudit<M extends Model>(
  model: ModelStatic<M>, values: CreationAttributes<M>, audit: AuditInput | ((row: M) => AuditInput), also: RowOf[] = [], check?: WriteCheck,
): Promise<M> {
  const now = new Date();
  const built = model.build(values);
  const attrs = model.getAttributes() as Record<string, unknown>;
  for (const stamp of ['createdAt', 'updatedAt']) if (stamp in attrs && built.getDataValue(stamp as never) == null) built.setDataValue(stamp as never, now as never);
  const row = built.get({ plain: true }) as Record<string, unknown>;
  // A function receives the row as it will be written (defaults, timestamps), e.g. to audit its presentation.
  const event = typeof audit === 'function' ? audit(built) : audit;
  const bind: unknown[] = [];
  const sql = `WITH created AS (INSERT INTO ${insertRowsSql(model as unknown as ModelStatic<Model>, [row], bind)} RETURNING *)
    ${auditCtes([event], bind, { at: now }).map((p) => `, ${p}`).join('')}
    ${also.map((r, i) => `, also${i} AS (INSERT INTO ${insertRowsSql(r.model, [{ createdAt: now, ...r.values }], bind)})`).join('')}
    ${check ? `, checked AS (SELECT CASE WHEN ${check.sql(bind)} THEN true ELSE docket_refuse('check') END AS ok)` : ''}
    SELECT created.* FROM created${check ? ', checked' : ''}`;
  try {
    const [created] = await model.sequelize!.query(sql, { bind, type: QueryTypes.SELECT, model, mapToModel: true });
    return created as M;
  } catch (err) {
    if (check && (err as { parent?: { code?: string } }).parent?.code === REFUSED) throw check.refused();
    throw err;
  }
}

/**
 * Takes back what createWithAudit wrote — the row, its audit event (`audit.action` on the row's entity) and the
 * domain event that is — in ONE statement: the undo when the row's workflow could not be started, so neither a row
 * waiting for a workflow that does not exist nor an event about a change that did not happen is left.
 */
export async function destroyWithAudit(row: Model, audit: Pick<AuditInput, 'tenantId' | 'action' | 'entityType' | 'entityId'>): Promise<void> {
  const model = row.constructor as ModelStatic<Model>;
  const pk = model.primaryKeyAttribute;
  const field = (model.getAttributes()[pk] as { field?: string }).field ?? pk;
  const eventType = EVENTS_FROM_AUDIT[audit.action]?.type ?? null;
  await model.sequelize!.query(
    `WITH unaudited AS (DELETE FROM "${AuditEvent.getTableName() as string}" WHERE tenant_id = $1 AND action = $2 AND entity_type = $3 AND entity_id = $4),
       unevented AS (DELETE FROM events WHERE tenant_id = $1 AND type = $6 AND subject_id = $4)
     DELETE FROM "${model.getTableName() as string}" WHERE "${field}" = $5`,
    { bind: [audit.tenantId, audit.action, audit.entityType, audit.entityId, row.get(pk), eventType] },
  );
}
