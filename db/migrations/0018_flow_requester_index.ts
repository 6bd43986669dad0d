// "My requests" (GET /v1/me/approval-requests, and ?requesterId= on the flows list): a requester's flows, newest
// first, read from an index rather than by scanning the tenant's flows.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('CREATE INDEX approval_flows_by_requester ON approval_flows (tenant_id, requester_id, created_at DESC, id DESC)');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP INDEX IF EXISTS approval_flows_by_requester');
}
