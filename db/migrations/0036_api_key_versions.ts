// An API key's version: its ETag, so a change (rotate, PATCH, revoke) can be made only to the version the caller
// read (If-Match). Two integrations rotating one key at once otherwise both get 200, and the first one's new
// secret stops working the moment the second's replaces it. Authentication's lastUsedAt touch is no change of the key.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE api_keys ADD COLUMN version integer NOT NULL DEFAULT 0');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('ALTER TABLE api_keys DROP COLUMN version');
}
