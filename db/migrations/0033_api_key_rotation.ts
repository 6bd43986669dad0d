// Rotating an API key (POST /v1/api-keys/{id}/rotate) gives it a new secret and keeps its id, prefix, owner and
// scopes, so nothing that names the key changes. The secret it replaced may keep working for a grace period (the
// integrations that hold it are redeployed meanwhile): its hash and the end of that period are kept beside the new
// one, at most one previous secret at a time. Changing either column changes what a credential resolves to, so it
// sends NOTIFY docket_credentials like a revocation (migration 0026), and every API process drops its cache.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q(`ALTER TABLE api_keys ADD COLUMN previous_secret_hash varchar(64), ADD COLUMN previous_valid_until timestamptz,
    ADD COLUMN rotated_at timestamptz`);
  await q('DROP TRIGGER api_keys_credentials_changed_update ON api_keys');
  await q(`CREATE TRIGGER api_keys_credentials_changed_update AFTER UPDATE ON api_keys FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
      OR OLD.scopes IS DISTINCT FROM NEW.scopes OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash
      OR OLD.previous_secret_hash IS DISTINCT FROM NEW.previous_secret_hash OR OLD.previous_valid_until IS DISTINCT FROM NEW.previous_valid_until
      OR OLD.prefix IS DISTINCT FROM NEW.prefix OR OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION docket_notify_credentials()`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q('DROP TRIGGER api_keys_credentials_changed_update ON api_keys');
  await q(`CREATE TRIGGER api_keys_credentials_changed_update AFTER UPDATE ON api_keys FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
      OR OLD.scopes IS DISTINCT FROM NEW.scopes OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash
      OR OLD.prefix IS DISTINCT FROM NEW.prefix OR OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION docket_notify_credentials()`);
  await q('ALTER TABLE api_keys DROP COLUMN previous_secret_hash, DROP COLUMN previous_valid_until, DROP COLUMN rotated_at');
}
