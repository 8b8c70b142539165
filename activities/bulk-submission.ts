/**
 * The activities of a `$bulk-submit` submission: read a provider's manifest (or run its export
 * first: ping-and-pull), load one file, delete what a replacing manifest no longer carries, and
 * forget the submission's records when its status expires.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { FileLoad, ManifestRequest, RemoteFile, RemoteManifest, SubmitterRef } from '../src/contracts/bulk-submit';
import { emptyProgress, loadFile, type LoadProgress } from '../src/bulk-submit/file-loader';
import { kickOffExport, pollExport, providerHeaders, ProviderRefusal, readManifest } from '../src/bulk-submit/provider-requests';
import type { Submitter, Submitters } from '../src/bulk-submit/submitters';
import { operationOutcome } from '../src/fhir/operation-outcome';
import { submissionDirectory, submissionIssuesKey } from '../src/output/file-keys';
import { writeText, type OutputStore } from '../src/output/output-store';
import { ResourceStore } from '../src/store/resource-store';
import { heartbeatDetails, heartbeating } from './liveness';

export interface SubmissionDependencies {
  pool: Pool;
  output: OutputStore;
  submitters?: Submitters;
}

export interface SubmissionLocation {
  tenant: string;
  jobId: string;
  submitter: SubmitterRef;
}

function submitterOf(deps: SubmissionDependencies, at: SubmissionLocation): Submitter {
  const submitter = deps.submitters?.find(at.tenant, at.submitter);
  // Removed from the configuration since the submission began: nothing more is fetched for it.
  if (!submitter) throw new ProviderRefusal(`submitter ${at.submitter.system}|${at.submitter.value} is no longer configured for tenant ${at.tenant}`);
  return submitter;
}

export function submissionActivities(deps: SubmissionDependencies) {
  return {
    /** The manifest's files; for a ping-and-pull `export` source, the provider's export is kicked off and polled first (resumed, not repeated, on retry). */
    async readRemoteManifest(input: SubmissionLocation & { request: ManifestRequest }): Promise<{ manifest: RemoteManifest; resolvedUrl?: string }> {
      return heartbeating(async (signal) => {
        const submitter = submitterOf(deps, input);
        const headers = await providerHeaders(submitter, input.request, signal);
        if (input.request.source === 'manifest') return { manifest: await readManifest(submitter, input.request.url, headers, signal) };
        let statusUrl = (Context.current().info.heartbeatDetails as { statusUrl?: string } | undefined)?.statusUrl;
        if (!statusUrl) {
          statusUrl = await kickOffExport(submitter, input.request.url, headers, signal);
          heartbeatDetails({ statusUrl });
        }
        for (;;) {
          const poll = await pollExport(submitter, statusUrl, headers, signal);
          if ('manifestUrl' in poll) return { manifest: await readManifest(submitter, poll.manifestUrl, headers, signal), resolvedUrl: poll.manifestUrl };
          await sleep(poll.retryAfterMs, undefined, { signal });
        }
      });
    },

    /** One file into the store, from the last committed line of an earlier attempt; its problems written as OperationOutcomes. */
    async loadSubmittedFile(
      input: SubmissionLocation & { manifestIndex: number; fileIndex: number; manifestUrl: string; file: RemoteFile; request: ManifestRequest; requiresAccessToken: boolean },
    ): Promise<FileLoad> {
      return heartbeating(async (signal) => {
        const submitter = submitterOf(deps, input);
        const headers = await providerHeaders(submitter, input.request, signal);
        const store = new ResourceStore(deps.pool, input.tenant);
        const start = (Context.current().info.heartbeatDetails as LoadProgress | undefined) ?? emptyProgress();
        const done = await loadFile(store, { url: input.file.url, type: input.file.type, headers, mode: input.request.mode }, start, {
          signal,
          committed: (progress) => heartbeatDetails(progress),
          recordKeys: async (type, ids) => {
            await deps.pool.query(
              `INSERT INTO submission_resources (tenant, job_id, manifest, resource_type, id)
               SELECT $1, $2, $3, $4, unnest($5::text[])`,
              [input.tenant, input.jobId, input.manifestIndex, type, ids],
            );
          },
        });
        const { offset: _offset, issues, ...load } = done;
        if (issues.length === 0) return load;
        const key = submissionIssuesKey(input.tenant, input.jobId, input.manifestIndex, input.fileIndex);
        // The line is in the diagnostics ("line 12 is not JSON"); never the line's content, which may be health data.
        const lines = issues.map((i) => JSON.stringify(operationOutcome({ severity: i.severity, code: 'invalid', diagnostics: `${input.file.url}: ${i.diagnostics}` })));
        await writeText(deps.output, key, `${lines.join('\n')}\n`);
        return { ...load, issuesKey: key };
      });
    },

    /** Deletes the resources the replaced manifest loaded that no other manifest of the submission carries; returns how many. */
    async removeReplacedResources(input: SubmissionLocation & { replacedManifestIndex: number }): Promise<number> {
      return heartbeating(async () => {
        const earlier = (Context.current().info.heartbeatDetails as { removed?: number } | undefined)?.removed;
        const store = new ResourceStore(deps.pool, input.tenant);
        const { rows } = await deps.pool.query<{ resource_type: string; id: string }>(
          `SELECT DISTINCT resource_type, id FROM submission_resources r
            WHERE tenant = $1 AND job_id = $2 AND manifest = $3
              AND NOT EXISTS (SELECT 1 FROM submission_resources o
                               WHERE o.tenant = r.tenant AND o.job_id = r.job_id AND o.manifest <> r.manifest
                                 AND o.resource_type = r.resource_type AND o.id = r.id)`,
          [input.tenant, input.jobId, input.replacedManifestIndex],
        );
        if (rows.length === 0 && earlier !== undefined) return earlier; // an earlier attempt did it all but report
        heartbeatDetails({ removed: rows.length });
        for (let i = 0; i < rows.length; i += 1000) {
          await store.write(rows.slice(i, i + 1000).map((r) => ({ op: 'delete' as const, resourceType: r.resource_type, id: r.id })));
        }
        // The replaced manifest carries nothing now: a later replacement does not count its keys as carried.
        await deps.pool.query('DELETE FROM submission_resources WHERE tenant = $1 AND job_id = $2 AND manifest = $3', [input.tenant, input.jobId, input.replacedManifestIndex]);
        return rows.length;
      });
    },

    /** The submission's records and issue files, when its status expires or it is cancelled. */
    async forgetSubmission(input: SubmissionLocation): Promise<void> {
      await deps.pool.query('DELETE FROM submission_resources WHERE tenant = $1 AND job_id = $2', [input.tenant, input.jobId]);
      await deps.output.deletePrefix(submissionDirectory(input.tenant, input.jobId));
    },
  };
}
