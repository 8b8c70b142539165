import { ActivityCancellationType, CancellationScope, condition, defineQuery, isCancellation, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AsyncRequestInput, AsyncRequestStatus } from '../src/contracts/async-request';
import { MAX_ATTEMPTS } from './activity-options';

export const asyncStatusQuery = defineQuery<AsyncRequestStatus>('asyncStatus');

const activityOptions = {
  startToCloseTimeout: '30 minutes',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: MAX_ATTEMPTS },
} as const;
const { deleteAsyncFiles } = proxyActivities<Activities>({ ...activityOptions, heartbeatTimeout: '1 minute' });

/**
 * An ordinary FHIR request (a type search, a batch) made with `Prefer: respond-async`: run it,
 * keep its response until it expires, then delete it. Cancellation (DELETE) deletes it at once.
 */
export async function asyncRequest(input: AsyncRequestInput): Promise<void> {
  const status: AsyncRequestStatus = { requestId: input.requestId, kind: input.kind, phase: 'running' };
  setHandler(asyncStatusQuery, () => status);
  // Activity options are not part of the history's commands: a request started earlier replays the same.
  const { runAsyncRequest } = proxyActivities<Activities>({ ...activityOptions, heartbeatTimeout: input.heartbeatTimeoutMs ?? '1 minute' });
  try {
    const response = await runAsyncRequest(input);
    const completedAt = Date.now();
    Object.assign(status, {
      ...response,
      phase: 'completed',
      completedAt: new Date(completedAt).toISOString(),
      expiresAt: new Date(completedAt + input.retentionMs).toISOString(),
    });
    await condition(() => false, input.retentionMs);
    await deleteAsyncFiles({ tenant: input.tenant, requestId: input.requestId });
  } catch (err) {
    if (isCancellation(err)) await CancellationScope.nonCancellable(() => deleteAsyncFiles({ tenant: input.tenant, requestId: input.requestId }));
    throw err;
  }
}
