// Webhook workflows: the tenant's relay (a loop with continue-as-new around one activity), each endpoint's delivery
// loop (the same shape), and the per-delivery workflow of before 0023, kept only for histories still running.
import { ActivityFailure, condition, continueAsNew, patched, proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { WebhookActivities } from '../activities/webhooks';
import { setWorkflowStatus } from './status';
import {
  backoffMs, claimLeaseMs, pokeEndpoint, pokeRelay, type WebhookDeliveryInput, type WebhookEndpointInput, type WebhookRelayInput,
} from './webhooks.api';
import { OUTAGE_RETRY } from './retry';

const relayActs = proxyActivities<WebhookActivities>({
  // A read takes milliseconds: a worker that died in one is replaced soon.
  startToCloseTimeout: '20 seconds',
  retry: OUTAGE_RETRY,
});
const ledger = proxyActivities<WebhookActivities>({
  startToCloseTimeout: '30 seconds',
  retry: OUTAGE_RETRY,
});

/** Reads per run before continue-as-new: a bounded history however long the relay runs. */
const READS_PER_RUN = 300;

/**
 * Reads the outbox every `everyMs` into deliveries and wakes the delivery workflows of the endpoints that got some.
 * It ends when the tenant has no enabled endpoint, unless poked meanwhile (a new endpoint starts it again with a signal).
 */
export async function webhookRelayWorkflow(input: WebhookRelayInput): Promise<void> {
  let poked = false;
  setHandler(pokeRelay, () => { poked = true; });
  for (let i = 0; i < READS_PER_RUN; i++) {
    poked = false;
    const readAt = Date.now();
    const { active } = await relayActs.relayWebhookEvents({ tenantId: input.tenantId, retry: input.retry });
    if (!active && !poked) return;
    // Reads start every `everyMs` (a read's own time is not added to the wait); runs from before waited it in full.
    const took = patched('relay-read-period') ? Date.now() - readAt : 0;
    await sleep(Math.max(1, input.everyMs - took));
  }
  await continueAsNew<typeof webhookRelayWorkflow>(input);
}

/** Rounds per run, and the history length that ends a run early (signals add to it): bounded histories. */
const ROUNDS_PER_RUN = 500;
const MAX_HISTORY = 8_000;
/** The longest sleep between rounds: a delivery made due without a poke (lost signal) waits at most this. */
const MAX_IDLE_MS = 60_000;
/** How long a workflow with nothing left waits for a wake before it ends. */
const LINGER_MS = 10_000;

/**
 * One endpoint's deliveries: each round's activity claims the due ones (a batch at a time, for a bounded while), POSTs
 * them a few at once and schedules the failed ones' next attempts; then the loop sleeps until the next is due or a
 * poke comes. It ends when nothing is pending or failed and no poke came for LINGER_MS (the relay starts it again with
 * one), or when the endpoint is disabled or deleted. One endpoint's slow or failing receiver only ever holds its own workflow.
 */
export async function webhookEndpointWorkflow(input: WebhookEndpointInput): Promise<void> {
  const sender = proxyActivities<WebhookActivities>({
    // A round starts POSTs for SEND_WINDOW_MS; the lease covers the last one's timeout.
    startToCloseTimeout: claimLeaseMs(input.retry) + 10_000,
    heartbeatTimeout: '15 seconds',
    retry: OUTAGE_RETRY,
  });
  let poked = false;
  let urgent = false;
  setHandler(pokeEndpoint, (poke) => {
    poked = true;
    if (poke?.urgent) urgent = true;
  });
  let failingRounds = input.failingRounds ?? 0;
  for (let i = 0; i < ROUNDS_PER_RUN && workflowInfo().historyLength < MAX_HISTORY; i++) {
    poked = false;
    urgent = false;
    const round = await sender.sendDueWebhookDeliveries({ tenantId: input.tenantId, endpointId: input.endpointId, retry: input.retry, probe: failingRounds > 0 });
    if (round.stop) {
      setWorkflowStatus('stopped');
      return;
    }
    if (round.sent > 0) failingRounds = 0;
    else if (round.failed > 0) failingRounds++;
    // "failing": its rounds only fail (it is probed with backoff) — what an operator looks for in the Temporal UI.
    if (round.sent + round.failed > 0) setWorkflowStatus(failingRounds > 0 ? 'failing' : 'delivering');
    // Nothing left: it lingers a little for the relay's next wake (under a steady stream of events it is not started
    // anew every second), then ends.
    if (round.nextDueAt === null && !poked) {
      if (await condition(() => poked, LINGER_MS)) continue;
      return;
    }
    const due = round.nextDueAt === null ? MAX_IDLE_MS : Math.min(MAX_IDLE_MS, Math.max(0, round.nextDueAt - Date.now()));
    // A failing endpoint is probed again after the backoff its failing rounds earned: new deliveries (the relay's
    // pokes) do not hurry it, a person's retry or replay does.
    const wait = failingRounds > 0 ? Math.max(due, Math.min(backoffMs(input.retry, failingRounds), MAX_IDLE_MS)) : due;
    if (wait > 0) await condition(() => urgent || (poked && failingRounds === 0), wait);
  }
  await continueAsNew<typeof webhookEndpointWorkflow>({ ...input, failingRounds });
}

/**
 * Before migration 0023, one workflow per delivery (its activity POSTed once per attempt under a Temporal retry
 * policy). Nothing starts it any more; it stays registered so the histories still running complete.
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
