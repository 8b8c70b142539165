import { CancellationScope, condition, defineQuery, defineSignal, isCancellation, proxyActivities, setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  CLOSE_SUBMISSION_SIGNAL,
  SUBMIT_MANIFEST_SIGNAL,
  type ManifestRequest,
  type SubmissionInput,
  type SubmissionStatus,
  type SubmittedManifestStatus,
  urlForDisplay,
} from '../src/contracts/bulk-submit';
import { MAX_ATTEMPTS } from './activity-options';
import { rootCause } from './scheduled-export';

export const submissionStatusQuery = defineQuery<SubmissionStatus>('submissionStatus');
export const submitManifestSignal = defineSignal<[ManifestRequest]>(SUBMIT_MANIFEST_SIGNAL);
export const closeSubmissionSignal = defineSignal<['completed' | 'stopped']>(CLOSE_SUBMISSION_SIGNAL);

const retry = { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: MAX_ATTEMPTS } as const;

/**
 * One `$bulk-submit` submission (or `$import`): manifests arrive by signal, each is read, its
 * files loaded (a few at once, one activity each, resumed from their last committed line when
 * retried), and what a replacing manifest no longer carries is deleted. The submission ends when
 * the provider says it is complete and every manifest is loaded, or at once when it is stopped;
 * its status stays for the retention, then its records are forgotten.
 */
export async function bulkSubmission(input: SubmissionInput): Promise<void> {
  const status: SubmissionStatus = { submissionId: input.submissionId, phase: 'open', startedAt: new Date().toISOString(), manifests: [] };
  const queue: SubmittedManifestStatus[] = [];
  let closing: 'completed' | 'stopped' | undefined = input.closeWith;
  const work = new CancellationScope();
  const requests = new Map<SubmittedManifestStatus, ManifestRequest>();

  const enqueue = (request: ManifestRequest) => {
    // A provider that repeats a request (a retried POST) does not load its manifest twice.
    if (status.manifests.some((m) => m.url === request.url && m.state !== 'replaced' && m.state !== 'failed')) return;
    const manifest: SubmittedManifestStatus = { url: request.url, source: request.source, replacesManifestUrl: request.replacesManifestUrl, mode: request.mode, metadata: request.metadata, state: 'queued', files: [] };
    status.manifests.push(manifest);
    queue.push(manifest);
    requests.set(manifest, request);
  };
  setHandler(submissionStatusQuery, () => status);
  setHandler(submitManifestSignal, (request) => {
    if (closing === undefined) enqueue(request);
  });
  setHandler(closeSubmissionSignal, (how) => {
    if (closing === 'stopped') return;
    closing = how;
    // Closed and still loading: the route refuses further manifests (409) while it says so.
    if (how === 'completed' && status.phase === 'open') status.phase = 'loading';
    if (how === 'stopped') work.cancel();
  });
  if (input.first) enqueue(input.first);
  if (closing === 'completed') status.phase = 'loading';

  const control = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', retry });
  const reading = proxyActivities<Activities>({ startToCloseTimeout: '1 hour', heartbeatTimeout: input.heartbeatTimeoutMs, retry });
  const loading = proxyActivities<Activities>({ startToCloseTimeout: '6 hours', heartbeatTimeout: input.heartbeatTimeoutMs, retry });
  const location = { tenant: input.tenant, jobId: input.jobId, submitter: input.submitter };

  const load = async (manifest: SubmittedManifestStatus) => {
    const request = requests.get(manifest)!;
    manifest.state = 'reading';
    showDetails(input, status);
    try {
      const remote = await reading.readRemoteManifest({ ...location, request });
      manifest.resolvedUrl = remote.resolvedUrl;
      manifest.transactionTime = remote.manifest.transactionTime;
      manifest.files = remote.manifest.files.map((f) => ({ ...f, state: 'pending' }));
      manifest.state = 'loading';
      showDetails(input, status);
      const index = status.manifests.indexOf(manifest);
      let next = 0;
      const lane = async () => {
        while (next < manifest.files.length) {
          const fileIndex = next++;
          const file = manifest.files[fileIndex];
          file.state = 'loading';
          try {
            file.load = await loading.loadSubmittedFile({ ...location, manifestIndex: index, fileIndex, manifestUrl: manifest.url, file: { url: file.url, type: file.type, count: file.count }, request, requiresAccessToken: remote.manifest.requiresAccessToken });
            file.state = 'done';
          } catch (err) {
            if (isCancellation(err)) throw err;
            file.state = 'failed';
            file.failure = rootCause(err);
          }
          showDetails(input, status);
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.min(input.maxParallelFiles, manifest.files.length)) }, lane));
      if (request.replacesManifestUrl) {
        const replaced = status.manifests.find((m) => m !== manifest && m.url === request.replacesManifestUrl && m.state === 'done');
        if (replaced) {
          manifest.removed = await loading.removeReplacedResources({ ...location, replacedManifestIndex: status.manifests.indexOf(replaced) });
          replaced.state = 'replaced';
        }
      }
      manifest.state = manifest.files.some((f) => f.state === 'failed') ? 'failed' : 'done';
    } catch (err) {
      if (isCancellation(err)) throw err;
      manifest.state = 'failed';
      manifest.failure = rootCause(err);
    }
    showDetails(input, status);
  };

  try {
    await work.run(async () => {
      for (;;) {
        await condition(() => queue.length > 0 || closing !== undefined);
        if (queue.length > 0) {
          await load(queue.shift()!);
          continue;
        }
        if (closing !== undefined) return;
      }
    });
    status.phase = closing === 'stopped' ? 'stopped' : 'completed';
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Stopped by the provider (`submissionStatus` stopped) or cancelled (DELETE): what was loaded stays loaded.
    status.phase = 'stopped';
    for (const m of status.manifests) if (m.state === 'queued' || m.state === 'reading' || m.state === 'loading') m.state = 'failed';
    if (closing !== 'stopped') {
      // DELETE: the workflow itself was cancelled; forget the records and end now.
      await CancellationScope.nonCancellable(() => control.forgetSubmission(location));
      throw err;
    }
  }
  const completedAt = Date.now();
  status.completedAt = new Date(completedAt).toISOString();
  status.expiresAt = new Date(completedAt + input.retentionMs).toISOString();
  showDetails(input, status);
  try {
    await condition(() => false, input.retentionMs);
  } finally {
    await CancellationScope.nonCancellable(() => control.forgetSubmission(location));
  }
}

/** The Temporal UI's summary of the submission: its manifests and files, with counts; no resource content, no URL queries. */
function showDetails(input: SubmissionInput, status: SubmissionStatus): void {
  const lines = status.manifests.map((m) => {
    const files = m.files.filter((f) => f.state === 'done').length;
    const written = m.files.reduce((n, f) => n + (f.load?.written ?? 0), 0);
    const errors = m.files.reduce((n, f) => n + (f.load?.errors ?? 0) + (f.state === 'failed' ? 1 : 0), 0);
    return `- ${urlForDisplay(m.url)}: ${m.state}, ${files} of ${m.files.length} files, ${written} written, ${errors} errors${m.removed !== undefined ? `, ${m.removed} removed (replaces ${urlForDisplay(m.replacesManifestUrl ?? '')})` : ''}`;
  });
  setCurrentDetails(`Submission ${input.submissionId} of ${input.submitter.system}|${input.submitter.value} (tenant ${input.tenant}): ${status.phase}\n${lines.join('\n')}`);
}
