// Every domain's activities (as domains/index.ts lists them), built from their dependencies, with Docket's
// retry rules (db models are initialised by the caller).
import { Config } from '../config';
import { DOMAINS, Domain } from '../domains';
import { relaySettings } from '../domains/webhooks/relay';
import { ActivityFunction, mergeDeclared, StartIntentRow, UnionToIntersection } from '../domains/module';
import { AttemptBudget, withOutageRetries } from '../lib/activity-retries';
import { blobStoreFor } from '../lib/s3-blob-store';
import { Logger } from '../lib/logger';
import { createEmailSender } from '../lib/notify/email';
import { PdfRenderer } from '../lib/pdf-renderer';
import type { ActivityDeps } from './deps';

export type { ActivityDeps } from './deps';

/**
 * An outage (Postgres or Temporal unreachable) is retried until it is over: the workflows' retry policies
 * have no attempt limit. These are the attempts each activity gets for any other error before it gives up:
 * what its domain declares, else `default`.
 */
export const ACTIVITY_ATTEMPTS: { default: number } & Record<string, AttemptBudget> = {
  ...mergeDeclared('attempts of activity', DOMAINS.map((d) => ({ domain: d.name, declared: 'attempts' in d ? d.attempts : {} }))),
  default: 10,
};

/** The workflows started with a start intent, as the domains declare them (the start reconciler's list). */
export const START_INTENTS = mergeDeclared<StartIntentRow>('start intent of workflow', DOMAINS.map((d) => ({ domain: d.name, declared: 'startIntents' in d ? d.startIntents : {} })));

/** Activities — Docket's, or a test's fakes of them — with Docket's retry rules (lib/activity-retries.ts). */
export const withActivityRetries = <T extends Parameters<typeof withOutageRetries>[0]>(activities: T): T => withOutageRetries(activities, ACTIVITY_ATTEMPTS);

/** Every domain's activities in one object, typed as each domain's factory makes them. */
export type Activities = UnionToIntersection<ReturnType<Extract<Domain, { activities: unknown }>['activities']>>;

export function createActivities(deps: ActivityDeps): Activities {
  const full: ActivityDeps = { ...deps, startIntents: deps.startIntents ?? START_INTENTS };
  const declared = DOMAINS.flatMap((d) => ('activities' in d ? [{ domain: d.name, declared: d.activities(full) as Record<string, ActivityFunction> }] : []));
  return withActivityRetries(mergeDeclared('activity', declared)) as unknown as Activities;
}

/** The production wiring of the dependencies, from config. */
export function activityDepsFromConfig(config: Config, logger: Logger): ActivityDeps {
  return {
    blobs: blobStoreFor(config),
    email: createEmailSender({ smtpUrl: config.mail.smtpUrl, from: config.mail.from, logger, logLinks: config.env === 'development' }),
    linkSecret: config.linkSecret, secretsKey: config.secretsKey, publicUrl: config.publicUrl,
    exportPageSize: config.auditExport.pageSize, exportPagePauseMs: config.auditExport.pagePauseMs,
    renderer: rendererFromConfig(config, logger), batchConcurrency: config.documents.poolSize,
    webhookTimeoutMs: config.webhookTimeoutMs, webhookRelay: relaySettings(config), webhookAutoDisableAfterMs: config.webhooks.autoDisableAfterMs, idempotencyTtlHours: config.idempotencyTtlHours,
    allowPrivateNetworks: config.outboundAllowPrivateNetworks, reconcileStartsGraceMs: config.reconcileStartsGraceSeconds * 1000,
    importChunkMs: config.imports.chunkMs, importXlsxChunkMs: config.imports.xlsxChunkMs, importStageRows: config.imports.stageRows, importMergeRows: config.imports.mergeRows,
    importMergeConcurrency: config.imports.mergeConcurrency, importMaxUncompressedBytes: config.imports.maxUncompressedBytes,
    bulkEmail: createEmailSender({ smtpUrl: config.mail.smtpUrl, from: config.mail.from, maxConnections: config.campaigns.concurrency, logLinks: config.env === 'development' }),
    campaignBatchSize: config.campaigns.batchSize, campaignConcurrency: config.campaigns.concurrency, campaignChunkMs: config.campaigns.chunkMs,
    campaignLanes: config.campaigns.lanes, campaignSnapshotTimeoutMs: config.campaigns.snapshotTimeoutMs,
    campaignUnsubscribeMailto: config.campaigns.unsubscribeMailto, senderDomainsMode: config.senderDomains.mode,
  };
}

/** The Chromium pool from config; the browser starts on the first render (or renderer.warm()). */
export function rendererFromConfig(config: Config, logger?: Logger): PdfRenderer {
  return new PdfRenderer({
    executablePath: config.documents.chromiumPath, poolSize: config.documents.poolSize, timeoutMs: config.documents.renderTimeoutMs,
    log: (msg, extra) => logger?.warn(extra ?? {}, msg),
  });
}
