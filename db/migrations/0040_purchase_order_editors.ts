// Who wrote a purchase order (its author and everyone who edited it): like the requester, they may not approve it
// (domains/purchasing/commands.ts submitPurchaseOrder → the flow's `contributors`). Orders written before start with
// their author.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`ALTER TABLE purchase_orders ADD COLUMN editor_ids uuid[] NOT NULL DEFAULT '{}'`);
  await qi.sequelize.query('UPDATE purchase_orders SET editor_ids = ARRAY[requester_id] WHERE requester_id IS NOT NULL');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE purchase_orders DROP COLUMN editor_ids');
}
