// Every change that can alter what a credential resolves to (a key revoked or rescoped, a user deactivated or
// edited, roles granted, edited or deleted, a tenant renamed) sends NOTIFY docket_credentials on commit, from
// whichever process made it (API, worker, CLI): every API process drops its cached credentials (api/auth.ts).
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q(`CREATE FUNCTION docket_notify_credentials() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('docket_credentials', TG_TABLE_NAME);
      RETURN NULL;
    END $$`);
  // Statement-level: one notification per statement (and Postgres folds equal ones within a transaction).
  for (const [table, events] of [['users', 'UPDATE OR DELETE'], ['roles', 'UPDATE OR DELETE'], ['user_roles', 'INSERT OR UPDATE OR DELETE'], ['tenants', 'UPDATE OR DELETE'], ['api_keys', 'DELETE']]) {
    await q(`CREATE TRIGGER ${table}_credentials_changed AFTER ${events} ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION docket_notify_credentials()`);
  }
  // A key's last use is written once a minute per key in use (api/auth.ts touch): that alone changes nothing
  // a credential resolves to, so it does not flush every process's cache.
  await q(`CREATE TRIGGER api_keys_credentials_changed_update AFTER UPDATE ON api_keys FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
      OR OLD.scopes IS DISTINCT FROM NEW.scopes OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash
      OR OLD.prefix IS DISTINCT FROM NEW.prefix OR OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION docket_notify_credentials()`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  for (const table of ['users', 'roles', 'user_roles', 'tenants', 'api_keys']) await q(`DROP TRIGGER IF EXISTS ${table}_credentials_changed ON ${table}`);
  await q('DROP TRIGGER IF EXISTS api_keys_credentials_changed_update ON api_keys');
  await q('DROP FUNCTION IF EXISTS docket_notify_credentials()');
}
