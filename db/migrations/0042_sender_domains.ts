// Sender domains: the domains a tenant has proven it controls (a TXT record at _docket.<domain> holding the token
// it was given), the only ones its campaigns may send From (domains/campaigns/sender-domains.ts). Each tenant
// proves a domain with its own token, so two tenants may both hold one: (tenant_id, domain) is unique, not domain.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q(`CREATE TABLE sender_domains (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    -- Lower-case ASCII (an IDN as punycode), without a trailing dot.
    domain varchar(253) NOT NULL,
    token varchar(64) NOT NULL,
    status varchar(16) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified')),
    verified_at timestamptz,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    -- Also the index a campaign's From is checked through (tenant, the domain and each of its parents).
    CONSTRAINT sender_domains_tenant_domain UNIQUE (tenant_id, domain)
  )`);
  await q('CREATE INDEX sender_domains_list ON sender_domains (tenant_id, created_at DESC, id DESC)');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP TABLE sender_domains');
}
