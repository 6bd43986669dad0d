// Webhook workflows: the tenant's relay (a loop with continue-as-new around one activity) and each delivery's retries.
import { ActivityFailure, continueAsNew, proxyActivities, setHandler, sleep } from '@temporalio/workflow';
import type { WebhookActivities } from '../activities/webhooks';
import { setWorkflowStatus } from './status';
import { pokeRelay, type WebhookDeliveryInput, type WebhookRelayInput } from './webhooks.api';

const relayActs = proxyActivities<WebhookActivities>({
  // A read takes milliseconds: a worker that died in one is replaced soon.
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
const ledger = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/** Reads per run before continue-as-new: a bounded history however long the relay runs. */
const READS_PER_RUN = 300;

/**
 * Reads the outbox every `everyMs` into deliveries and starts their workflows. It ends when the tenant has no
 * enabled endpoint and nothing to start, unless poked meanwhile (a new endpoint starts it again with a signal).
 */
export async function webhookRelayWorkflow(input: WebhookRelayInput): Promise<void> {
  let poked = false;
  setHandler(pokeRelay, () => { poked = true; });
  for (let i = 0; i < READS_PER_RUN; i++) {
    poked = false;
    const { active } = await relayActs.relayWebhookEvents({ tenantId: input.tenantId, retry: input.retry });
    if (!active && !poked) return;
    await sleep(input.everyMs);
  }
  await continueAsNew<typeof webhookRelayWorkflow>(input);
}

/**
 * One delivery: its activity POSTs once per attempt (logging each) and throws on anything but a 2xx, so Temporal
 * retries it with exponential backoff until it is delivered or `giveUpAfterMs` has passed; then it is `dead`.
 */
export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<string> {
  const { retry } = input;
  const attempt = proxyActivities<WebhookActivities>({
    startToCloseTimeout: retry.attemptTimeoutMs + 5_000,
    scheduleToCloseTimeout: retry.giveUpAfterMs,
    retry: { initialInterval: retry.initialIntervalMs, backoffCoefficient: 2, maximumInterval: retry.maxIntervalMs, nonRetryableErrorTypes: ['WebhookDeliveryGone'] },
  });
  setWorkflowStatus('delivering');
  try {
    const outcome = await attempt.attemptWebhookDelivery({ tenantId: input.tenantId, deliveryId: input.deliveryId });
    setWorkflowStatus(outcome);
    return outcome;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    await ledger.markWebhookDeliveryDead({ tenantId: input.tenantId, deliveryId: input.deliveryId });
    setWorkflowStatus('dead');
    return 'dead';
  }
}
