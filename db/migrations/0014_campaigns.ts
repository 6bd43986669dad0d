// Campaigns (one email to an audience) and their recipients: the snapshot a send takes of its audience, one row
// per address, which is also the campaign's delivery ledger (status, Message-ID, SMTP code per recipient).
//
// Sized for a million recipients per campaign: a recipient row is small and keyed (campaign, n) with n 1..N in
// snapshot order, so a send walks it by key range and a batch's outcomes are one UPDATE … FROM unnest(…).
// Raw SQL, as 0012: composite keys, partial indexes and checks are what this schema is about.
import { QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  const q = (sql: string) => qi.sequelize.query(sql);
  await q(`CREATE TABLE campaigns (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    name varchar(200) NOT NULL,
    subject varchar(998) NOT NULL,
    from_email varchar(320) NOT NULL,
    from_name varchar(200),
    reply_to varchar(320),
    html text NOT NULL,
    text text NOT NULL DEFAULT '',
    -- {listIds, segmentIds, excludeListIds, excludeSegmentIds}
    audience jsonb NOT NULL,
    status varchar(16) NOT NULL DEFAULT 'draft'
      CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'finished', 'cancelled', 'failed')),
    -- The SMTP server is unreachable and the send is backing off (shown as a sub-status of running).
    retrying boolean NOT NULL DEFAULT false,
    last_error text,
    error jsonb,
    send_at timestamptz,
    time_zone varchar(64),
    version integer NOT NULL DEFAULT 1,
    workflow_id varchar(400),
    -- Runs started (the send, then each "retry failed"), and when the current one's workflow began: a run
    -- recorded and not begun is what the start reconciler looks for.
    run integer NOT NULL DEFAULT 0,
    run_started_at timestamptz,
    audience_size integer,
    sent integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    skipped integer NOT NULL DEFAULT 0,
    -- Mails per minute over the last batch, and when it was written (the API's current rate and ETA).
    rate_per_minute real,
    progress_at timestamptz,
    created_by uuid,
    started_at timestamptz,
    finished_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
  )`);
  await q('CREATE INDEX campaigns_list ON campaigns (tenant_id, created_at DESC, id DESC)');

  await q(`CREATE TABLE campaign_recipients (
    tenant_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    -- 1..N in snapshot order: batches are key ranges, the heartbeated cursor is the last n done.
    n integer NOT NULL,
    subscriber_id uuid NOT NULL,
    email varchar(320) NOT NULL,
    status varchar(10) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts smallint NOT NULL DEFAULT 0,
    message_id varchar(300),
    smtp_code smallint,
    error text,
    updated_at timestamptz,
    PRIMARY KEY (campaign_id, n),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id) ON DELETE CASCADE
  )`);
  // Deliveries by status (failed, skipped, pending) and "retry failed"; sent ones, the bulk, stay out of it.
  await q("CREATE INDEX campaign_recipients_not_sent ON campaign_recipients (campaign_id, status, n) WHERE status <> 'sent'");
  // Erasing a subscriber anonymises their recipient rows.
  await q('CREATE INDEX campaign_recipients_subscriber ON campaign_recipients (tenant_id, subscriber_id)');
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.sequelize.query('DROP TABLE campaign_recipients');
  await qi.sequelize.query('DROP TABLE campaigns');
}
