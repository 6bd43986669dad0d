// Shared definitions of the webhook workflows: a relay per tenant turning new events into deliveries, and one
// workflow per delivery whose activity POSTs it under a retry policy.
import { defineSignal } from '@temporalio/workflow';

export const WEBHOOKS_TASK_QUEUE = 'docket-webhooks';
export const WEBHOOKS_DOMAIN = 'webhooks';
/** The relay's entity id: its workflow is webhooks:<tenantId>:relay. */
export const RELAY_ENTITY_ID = 'relay';

/** Wakes the relay (an endpoint created or enabled, a replay, a retry): it reads at once and does not end idle. */
export const pokeRelay = defineSignal('pokeRelay');

export interface WebhookRetrySchedule {
  /** First retry after this; each later one waits twice as long as the one before, up to `maxIntervalMs`. */
  initialIntervalMs: number;
  maxIntervalMs: number;
  /** No attempt starts after this long from the first: the delivery is then `dead`. */
  giveUpAfterMs: number;
  /** One attempt's HTTP timeout; the activity gets this plus a margin. */
  attemptTimeoutMs: number;
}

export interface WebhookRelayInput {
  tenantId: string;
  /** How often it reads the outbox while it has enabled endpoints. */
  everyMs: number;
  retry: WebhookRetrySchedule;
}

export interface WebhookDeliveryInput {
  tenantId: string;
  deliveryId: string;
  retry: WebhookRetrySchedule;
}
