// docket_refuse(code): raises SQLSTATE DK001 with `code` as its message. A statement that writes a row with its audit
// event and start intent (lib/audit.ts createWithAudit) calls it when a check of what it refers to fails (e.g. a
// reminder's users: active users of the tenant), so the check and the writes are one round trip and the refusal takes
// every write of the statement back. VOLATILE (the default): never folded, called only where the CASE reaches it.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`CREATE OR REPLACE FUNCTION docket_refuse(code text) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION USING ERRCODE = 'DK001', MESSAGE = code; END $$`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP FUNCTION IF EXISTS docket_refuse(text)');
}
