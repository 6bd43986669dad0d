// Subscriber export: one activity streams the CSV into the file store and marks the export ready; if it gives up,
// the export is marked failed with its reason. The history is a handful of events whatever the audience's size.
import { proxyActivities } from '@temporalio/workflow';
import type { AudienceActivities } from '../activities/audience';
import type { SubscriberExportInput, SubscriberExportResult } from './audience.api';
import { endCancelled, failureMessage } from './failures';
import { setWorkflowStatus } from './status';
import { OUTAGE_RETRY } from './retry';

// No attempt limit for outages (retried until over); other errors get the attempts of domains/audience/index.ts.
const short = proxyActivities<AudienceActivities>({
  startToCloseTimeout: '1 minute',
  retry: OUTAGE_RETRY,
});

const writer = proxyActivities<AudienceActivities>({
  startToCloseTimeout: '2 hours',
  // A dead worker is noticed after this long, and another writes the export again.
  heartbeatTimeout: '10 seconds',
  retry: OUTAGE_RETRY,
});

export async function subscriberExportWorkflow(input: SubscriberExportInput): Promise<SubscriberExportResult> {
  const known = input.patches;
  setWorkflowStatus('running', known);
  try {
    const written = await writer.writeSubscriberExport(input);
    setWorkflowStatus('ready', known);
    return { status: 'ready', ...written };
  } catch (err) {
    await endCancelled(err, (error) => short.failSubscriberExport({ ...input, error }), { known });
    const message = failureMessage(err);
    await short.failSubscriberExport({ ...input, error: message });
    setWorkflowStatus('failed', known);
    return { status: 'failed', rows: 0, error: message };
  }
}
