// An audit export's CSV is written page by page into Postgres, not into a file on the worker's disk: with workers
// on hosts that share no disk, a chunk that ran on another host found no partial file and started the export over.
// Unlogged: the parts are rebuilt from the audit log if lost (a Postgres crash truncates the table, and the next
// chunk, finding its cursor's parts gone, starts the export over), so they need no WAL.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query(`CREATE UNLOGGED TABLE audit_export_parts (
    export_id uuid NOT NULL REFERENCES audit_exports (id) ON DELETE CASCADE,
    from_rows integer NOT NULL,
    to_rows integer NOT NULL,
    last_id bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (export_id, from_rows)
  )`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP TABLE audit_export_parts');
}
