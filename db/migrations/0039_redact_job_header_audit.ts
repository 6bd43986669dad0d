// An http job's header values (credentials for the service it calls) were recorded in the clear by its audit events
// (jobs.schedule.created/updated/deleted, jobs.run.requested), readable with audit.read and in audit exports. They are
// now recorded as "***" (domains/jobs/secret-params.ts); this replaces the values already recorded the same way, the
// header names kept. Data only: `down` cannot bring the values back, and leaves the schema as it was.
// (The schedules' own rows are sealed when they are next changed; until then the job uses their plain values.)
import { QueryInterface } from 'sequelize';

const redacted = (col: 'before' | 'after') => `CASE WHEN ${col}->>'jobType' = 'http' AND jsonb_typeof(${col} #> '{params,headers}') = 'object'
  THEN jsonb_set(${col}, '{params,headers}', (SELECT coalesce(jsonb_object_agg(k, to_jsonb('***'::text)), '{}'::jsonb) FROM jsonb_object_keys(${col} #> '{params,headers}') k))
  ELSE ${col} END`;

const holdsValues = (col: 'before' | 'after') => `(${col}->>'jobType' = 'http' AND jsonb_typeof(${col} #> '{params,headers}') = 'object'
  AND EXISTS (SELECT 1 FROM jsonb_each(${col} #> '{params,headers}') h WHERE h.value <> to_jsonb('***'::text)))`;

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`UPDATE audit_events SET before = ${redacted('before')}, after = ${redacted('after')}
    WHERE action IN ('jobs.schedule.created', 'jobs.schedule.updated', 'jobs.schedule.deleted', 'jobs.run.requested')
      AND (${holdsValues('before')} OR ${holdsValues('after')})`);
}

export async function down(): Promise<void> {
  // The values are gone for good; nothing in the schema changed.
}
