// The outbox of workflow starts: a row is written in the same statement or transaction as the row its
// workflow owns, and removed once the start is confirmed. One left behind (the API died between the
// commit and the start) is found and started by the start reconciler (activities/system.ts).
import { DataTypes, QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.createTable('workflow_start_intents', {
    workflow_id: { type: DataTypes.STRING(400), primaryKey: true },
    tenant_id: { type: DataTypes.UUID, allowNull: false },
    workflow_type: { type: DataTypes.STRING(100), allowNull: false },
    // The whole start (type, queue, business ref, search attributes' values, arguments), as the API made it.
    request: { type: DataTypes.JSONB, allowNull: false },
    created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  });
  await qi.addIndex('workflow_start_intents', ['created_at']);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.dropTable('workflow_start_intents');
}
