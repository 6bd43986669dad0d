// The audience (subscribers, lists, memberships) and imports (runs, rejections, before-images, mapping templates).
//
// Sized for tenants with millions of subscribers: the subscriber row stays lean (campaigns snapshot it with one
// INSERT … SELECT), its key is (tenant_id, id) so memberships carry the tenant in their foreign keys (a row of one
// tenant can never point at another's), and every index earns its cost on a 1M-row import (see
// bench/experiments/imports-throughput.ts). Raw SQL, because composite keys, collations, partial and GIN indexes
// and triggers are what this schema is about.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);

  // Rows written by an import carry its id; any other write to such a row forgets it. A revert therefore knows
  // exactly which rows still hold what the import wrote, whoever changes them later (API, campaign, another import),
  // without every writer having to remember to clear the column.
  await q(`CREATE FUNCTION docket_forget_import() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.import_id := NULL; RETURN NEW; END $$`);

  await q(`CREATE TABLE subscribers (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    -- Stored lower-cased, compared bytewise: unique per tenant regardless of case, and prefix searches use the index.
    email varchar(320) COLLATE "C" NOT NULL CHECK (email = lower(email)),
    name varchar(200),
    attributes jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    status varchar(16) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'unsubscribed', 'blocklisted', 'bounced')),
    import_id uuid,
    erased_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
  )`);
  await q('CREATE UNIQUE INDEX subscribers_email ON subscribers (tenant_id, email)');
  // Attribute equality filters and segments (attributes @> '{"plan":"pro"}').
  await q('CREATE INDEX subscribers_attributes ON subscribers USING GIN (attributes jsonb_path_ops)');
  // Most subscribers are active: the others (a filter by status, campaigns' exclusions) are a small partial index.
  await q("CREATE INDEX subscribers_not_active ON subscribers (tenant_id, status, id) WHERE status <> 'active'");
  await q(`CREATE TRIGGER subscribers_forget_import BEFORE UPDATE ON subscribers FOR EACH ROW
    WHEN (OLD.import_id IS NOT NULL AND NEW.import_id IS NOT DISTINCT FROM OLD.import_id) EXECUTE FUNCTION docket_forget_import()`);

  await q(`CREATE TABLE lists (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    name varchar(200) NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
  )`);
  await q('CREATE UNIQUE INDEX lists_name ON lists (tenant_id, lower(name))');

  await q(`CREATE TABLE list_members (
    tenant_id uuid NOT NULL,
    list_id uuid NOT NULL,
    subscriber_id uuid NOT NULL,
    -- The import that added the membership (a revert removes it), null when added otherwise.
    import_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, list_id, subscriber_id),
    FOREIGN KEY (tenant_id, list_id) REFERENCES lists (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, subscriber_id) REFERENCES subscribers (tenant_id, id) ON DELETE CASCADE
  )`);
  await q('CREATE INDEX list_members_subscriber ON list_members (tenant_id, subscriber_id)');

  // Users written by an import carry its id too (the users import target).
  await q('ALTER TABLE users ADD COLUMN import_id uuid');
  await q(`CREATE TRIGGER users_forget_import BEFORE UPDATE ON users FOR EACH ROW
    WHEN (OLD.import_id IS NOT NULL AND NEW.import_id IS NOT DISTINCT FROM OLD.import_id) EXECUTE FUNCTION docket_forget_import()`);

  await q(`CREATE TABLE import_templates (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    name varchar(200) NOT NULL,
    version integer NOT NULL DEFAULT 1,
    target varchar(50) NOT NULL,
    -- {encoding, delimiter, headerRow, sheet}
    source jsonb NOT NULL DEFAULT '{}',
    -- [{source, field, transforms: [...]}]
    columns jsonb NOT NULL,
    key_field varchar(100) NOT NULL,
    merge_strategy varchar(10) NOT NULL CHECK (merge_strategy IN ('skip', 'replace', 'merge')),
    created_by varchar(200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
  )`);
  await q('CREATE UNIQUE INDEX import_templates_name ON import_templates (tenant_id, lower(name))');
  // Every version as it was saved: a run names the version it used.
  await q(`CREATE TABLE import_template_versions (
    tenant_id uuid NOT NULL,
    template_id uuid NOT NULL,
    version integer NOT NULL,
    name varchar(200) NOT NULL,
    target varchar(50) NOT NULL,
    source jsonb NOT NULL,
    columns jsonb NOT NULL,
    key_field varchar(100) NOT NULL,
    merge_strategy varchar(10) NOT NULL,
    created_by varchar(200),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, template_id, version),
    FOREIGN KEY (tenant_id, template_id) REFERENCES import_templates (tenant_id, id) ON DELETE CASCADE
  )`);

  await q(`CREATE TABLE imports (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    target varchar(50) NOT NULL,
    -- The uploaded file (no foreign key: the bytes are addressed by sha256, which the run keeps).
    file_id uuid NOT NULL,
    file_sha256 char(64) NOT NULL,
    file_name varchar(300),
    file_size bigint NOT NULL,
    template_id uuid,
    template_version integer,
    -- What the run uses, resolved when it was requested (a template edited later does not change it).
    source jsonb NOT NULL,
    columns jsonb NOT NULL,
    key_field varchar(100) NOT NULL,
    merge_strategy varchar(10) NOT NULL CHECK (merge_strategy IN ('skip', 'replace', 'merge')),
    dry_run boolean NOT NULL DEFAULT false,
    on_row_error varchar(10) NOT NULL DEFAULT 'skip' CHECK (on_row_error IN ('skip', 'abort')),
    phase varchar(20) NOT NULL DEFAULT 'parsing' CHECK (phase IN ('parsing', 'staging', 'merging', 'finished', 'failed', 'cancelled')),
    -- What the file turned out to be: {format, encoding, delimiter, sheet, header: [...]}.
    detected jsonb,
    rows_read integer NOT NULL DEFAULT 0,
    rows_valid integer NOT NULL DEFAULT 0,
    rows_rejected integer NOT NULL DEFAULT 0,
    rows_created integer NOT NULL DEFAULT 0,
    rows_updated integer NOT NULL DEFAULT 0,
    rows_unchanged integer NOT NULL DEFAULT 0,
    rows_skipped integer NOT NULL DEFAULT 0,
    -- The merge's progress, committed with each chunk it describes: a retried merge never applies a chunk twice.
    merge_cursor jsonb,
    error jsonb,
    workflow_id varchar(300) NOT NULL,
    created_by varchar(200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    reverted_at timestamptz,
    reverted_by varchar(200),
    PRIMARY KEY (tenant_id, id)
  )`);
  await q('CREATE INDEX imports_listing ON imports (tenant_id, created_at DESC, id DESC)');
  await q('CREATE INDEX imports_phase ON imports (tenant_id, phase, created_at DESC)');

  // One rejection per rejected row (its first error); the raw cells are what the rejections CSV gives back.
  await q(`CREATE TABLE import_rejections (
    tenant_id uuid NOT NULL,
    import_id uuid NOT NULL,
    row_no integer NOT NULL,
    column_name varchar(300),
    code varchar(40) NOT NULL,
    message text NOT NULL,
    raw jsonb,
    PRIMARY KEY (tenant_id, import_id, row_no),
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id) ON DELETE CASCADE
  )`);

  // What an import overwrote, per row it updated: a revert puts it back.
  await q(`CREATE TABLE import_before_images (
    tenant_id uuid NOT NULL,
    import_id uuid NOT NULL,
    row_id uuid NOT NULL,
    before jsonb NOT NULL,
    PRIMARY KEY (tenant_id, import_id, row_id),
    FOREIGN KEY (tenant_id, import_id) REFERENCES imports (tenant_id, id) ON DELETE CASCADE
  )`);
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  for (const t of ['import_before_images', 'import_rejections', 'imports', 'import_template_versions', 'import_templates', 'list_members', 'lists', 'subscribers']) {
    await q(`DROP TABLE IF EXISTS ${t}`);
  }
  await q('DROP TRIGGER IF EXISTS users_forget_import ON users');
  await q('ALTER TABLE users DROP COLUMN IF EXISTS import_id');
  await q('DROP FUNCTION IF EXISTS docket_forget_import()');
}
