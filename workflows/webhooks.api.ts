// Shared definitions of the webhook workflows: a relay per tenant turning new events into deliveries, and one
// delivery workflow per endpoint whose activity sends the endpoint's due deliveries in batches.
import { defineSignal } from '@temporalio/workflow';

export const WEBHOOKS_TASK_QUEUE = 'docket-webhooks';
export const WEBHOOKS_DOMAIN = 'webhooks';
/** The relay's entity id: its workflow is webhooks:<tenantId>:relay. */
export const RELAY_ENTITY_ID = 'relay';

/** Wakes the relay (an endpoint created or enabled, a replay, a retry): it reads at once and does not end idle. */
export const pokeRelay = defineSignal('pokeRelay');

/**
 * Wakes an endpoint's delivery workflow: deliveries were made (the relay) or made due by a person (`urgent`: a retry,
 * a replay). It sends at once, unless the endpoint is failing: then only an urgent poke cuts its backoff short.
 */
export const pokeEndpoint = defineSignal<[{ urgent?: boolean }?]>('pokeEndpoint');

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

export interface WebhookEndpointInput {
  tenantId: string;
  endpointId: string;
  retry: WebhookRetrySchedule;
  /** Rounds in a row that only failed (carried over continue-as-new): the endpoint is probed with their backoff. */
  failingRounds?: number;
}

/** What one round of an endpoint's sending did, and when it has something due next (null: nothing pending at all). */
export interface WebhookSendRound {
  sent: number;
  failed: number;
  nextDueAt: number | null;
  /** The endpoint is disabled or deleted: its workflow ends. */
  stop: boolean;
}

/** Deliveries an endpoint's round claims at once, and how many of its POSTs are in flight at most. */
export const SEND_BATCH = 200;
export const SEND_CONCURRENCY = 16;
/**
 * A round starts POSTs for this long; the deliveries it claimed are leased (their next_attempt_at pushed ahead) for
 * this plus one attempt's timeout and a margin, so any POST it started has ended before another round may claim them.
 */
export const SEND_WINDOW_MS = 20_000;
/** The wait before attempt `attempt + 1` after `attempt` failed ones: doubling from the first retry's, up to the longest. */
export function backoffMs(retry: WebhookRetrySchedule, attempt: number): number {
  return Math.min(retry.initialIntervalMs * 2 ** Math.min(attempt - 1, 40), retry.maxIntervalMs);
}

export const claimLeaseMs = (retry: WebhookRetrySchedule): number => SEND_WINDOW_MS + retry.attemptTimeoutMs + 5_000;

/** Before 0023 each delivery had its own workflow; kept so such histories still run to their end. */
export interface WebhookDeliveryInput {
  tenantId: string;
  deliveryId: string;
  retry: WebhookRetrySchedule;
}
