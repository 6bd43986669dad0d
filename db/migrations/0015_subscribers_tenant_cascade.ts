// Subscribers lose their row-level foreign key to tenants: on a 1M-row import that key's check (a lookup and a
// FOR KEY SHARE lock on the one tenant row, per inserted row) was ~40 % of each merge chunk's time
// (EXPLAIN ANALYZE: 190–420 ms of 680–1,010 ms per 25,000 rows). What it gave is kept otherwise: every writer
// takes the tenant from a row that has the key (the API's authenticated tenant, the import run), and deleting a
// tenant still deletes its subscribers — by a trigger, once per tenant instead of a check per subscriber.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q('ALTER TABLE subscribers DROP CONSTRAINT IF EXISTS subscribers_tenant_id_fkey');
  await q(`CREATE FUNCTION docket_delete_tenant_subscribers() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN DELETE FROM subscribers WHERE tenant_id = OLD.id; RETURN OLD; END $$`);
  await q(`CREATE TRIGGER tenants_delete_subscribers AFTER DELETE ON tenants FOR EACH ROW
    EXECUTE FUNCTION docket_delete_tenant_subscribers()`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q('DROP TRIGGER IF EXISTS tenants_delete_subscribers ON tenants');
  await q('DROP FUNCTION IF EXISTS docket_delete_tenant_subscribers()');
  await q('ALTER TABLE subscribers ADD CONSTRAINT subscribers_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE');
}
