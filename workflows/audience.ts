// Subscriber export: one activity streams the CSV into the file store and marks the export ready; if it gives up,
// the export is marked failed with its reason. The history is a handful of events whatever the audience's size.
import { CancellationScope, isCancellation, patched, proxyActivities } from '@temporalio/workflow';
import type { AudienceActivities } from '../activities/audience';
import type { SubscriberExportInput, SubscriberExportResult } from './audience.api';
import { CANCELLED_MESSAGE, failureMessage } from './failures';
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

/** Runs cancelled before this left their row `running` and replay so. */
const CANCELLED_WRITE_PATCH = 'export-cancel-writes';

export async function subscriberExportWorkflow(input: SubscriberExportInput): Promise<SubscriberExportResult> {
  setWorkflowStatus('running');
  try {
    const written = await writer.writeSubscriberExport(input);
    setWorkflowStatus('ready');
    return { status: 'ready', ...written };
  } catch (err) {
    // Cancelled from Temporal itself (the UI, the CLI): the export is marked failed, outside the cancelled scope
    // (which would refuse the write), so its row does not stay `running`; the run still ends cancelled.
    if (isCancellation(err) && patched(CANCELLED_WRITE_PATCH)) {
      await CancellationScope.nonCancellable(() => short.failSubscriberExport({ ...input, error: CANCELLED_MESSAGE }));
      setWorkflowStatus('failed');
      throw err;
    }
    const message = failureMessage(err);
    await short.failSubscriberExport({ ...input, error: message });
    setWorkflowStatus('failed');
    return { status: 'failed', rows: 0, error: message };
  }
}
