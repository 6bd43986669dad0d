// Waking a tenant's webhook relay (signal-with-start: one relay per tenant), from the API and from activities that
// hand work to it (a reminder's webhook firing).
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import type { webhookRelayWorkflow } from '../../workflows/webhooks';
import { pokeRelay, RELAY_ENTITY_ID, WEBHOOKS_DOMAIN, WEBHOOKS_TASK_QUEUE, type WebhookRelayInput } from '../../workflows/webhooks.api';
import { businessWorkflowId, ENTITY_ID, ENTITY_TYPE, STATUS, TENANT_ID } from '../../workflows/search-attributes';

/** How a relay reads and retries: from config, the same for every tenant. */
export type RelaySettings = Omit<WebhookRelayInput, 'tenantId'>;

export function relaySettings(config: Pick<Config, 'webhooks' | 'webhookTimeoutMs'>): RelaySettings {
  const w = config.webhooks;
  return {
    everyMs: w.relayEveryMs,
    retry: { initialIntervalMs: w.retryInitialMs, maxIntervalMs: w.retryMaxMs, giveUpAfterMs: w.giveUpMs, attemptTimeoutMs: config.webhookTimeoutMs },
  };
}

/** Starts the tenant's relay, or wakes the running one. */
export async function signalRelay(client: Client, tenantId: string, settings: RelaySettings): Promise<void> {
  const ref = { domain: WEBHOOKS_DOMAIN, tenantId, entityId: RELAY_ENTITY_ID };
  await client.workflow.signalWithStart<typeof webhookRelayWorkflow, []>('webhookRelayWorkflow', {
    workflowId: businessWorkflowId(ref), taskQueue: WEBHOOKS_TASK_QUEUE, signal: pokeRelay, signalArgs: [],
    args: [{ tenantId, ...settings }],
    typedSearchAttributes: [{ key: TENANT_ID, value: tenantId }, { key: ENTITY_TYPE, value: 'webhook_relay' }, { key: ENTITY_ID, value: RELAY_ENTITY_ID }, { key: STATUS, value: 'running' }],
  });
}
