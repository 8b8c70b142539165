/**
 * What `$bulk-submit-status` answers once a submission has ended: the STU4 BulkSubmitStatusManifest,
 * one `outcome` item per submitted manifest (an NDJSON file of OperationOutcomes, with its
 * `countSeverity` and `fileSize`), paged with `link` `next`; and those outcome files: one
 * OperationOutcome for the manifest, one per file with its counts, then each problem with its line.
 */
import type { SubmissionStatus, SubmittedManifestStatus } from '../contracts/bulk-submit';
import { operationOutcome, type Issue } from '../fhir/operation-outcome';

export const SUBMIT_STATUS_MANIFEST_TYPE = 'http://hl7.org/fhir/uv/bulkdata/StructureDefinition/BulkSubmitStatusManifest';

type Severity = 'information' | 'warning' | 'error';

/** The outcome lines of a manifest that bulkflow writes itself (the problems' lines follow from the issue files). */
export function manifestOutcomeLines(manifest: SubmittedManifestStatus): Array<{ severity: Severity; line: string }> {
  const lines: Array<{ severity: Severity; line: string }> = [];
  const add = (issue: Issue & { severity: Severity }) => lines.push({ severity: issue.severity, line: JSON.stringify(operationOutcome(issue)) });
  const sum = (pick: (f: SubmittedManifestStatus['files'][number]) => number) => manifest.files.reduce((n, f) => n + pick(f), 0);
  const written = sum((f) => f.load?.written ?? 0);
  const unchanged = sum((f) => f.load?.unchanged ?? 0);
  const kept = sum((f) => f.load?.kept ?? 0);
  const errors = sum((f) => f.load?.errors ?? 0);
  const failedFiles = manifest.files.filter((f) => f.state === 'failed').length;
  const ok = manifest.state === 'done' || manifest.state === 'replaced';
  add({
    severity: ok ? 'information' : 'error',
    code: ok ? 'informational' : 'processing',
    diagnostics:
      `Manifest ${manifest.url} ${manifest.state === 'replaced' ? 'was loaded and later replaced' : ok ? 'loaded' : `not loaded completely (${manifest.state})`}` +
      `: ${manifest.files.length} files, ${written} resources written, ${unchanged} unchanged, ${kept} kept as stored, ${errors} lines refused, ${failedFiles} files failed` +
      (manifest.removed !== undefined ? `; ${manifest.removed} resources of ${manifest.replacesManifestUrl} it replaces removed` : '') +
      (manifest.failure ? `; ${manifest.failure}` : ''),
  });
  for (const file of manifest.files) {
    if (file.state === 'failed') add({ severity: 'error', code: 'exception', diagnostics: `File ${file.url} (${file.type}) could not be loaded: ${file.failure ?? 'unknown'}` });
    else if (file.load) {
      add({
        severity: 'information',
        code: 'informational',
        diagnostics: `File ${file.url} (${file.type}): ${file.load.bytes} bytes, ${file.load.lines} lines, ${file.load.written} written, ${file.load.unchanged} unchanged, ${file.load.kept} kept, ${file.load.errors} refused`,
      });
    } else add({ severity: 'warning', code: 'incomplete', diagnostics: `File ${file.url} (${file.type}) was not loaded (the submission was stopped)` });
  }
  return lines;
}

export interface OutcomeFile {
  manifestUrl: string;
  url: string;
  text: string;
  countSeverity: Array<{ code: Severity; count: number }>;
}

/** A manifest's outcome file: bulkflow's lines, then the issue files' lines (each one OperationOutcome). */
export function outcomeFile(manifest: SubmittedManifestStatus, url: string, issueFiles: string[]): OutcomeFile {
  const counts: Record<Severity, number> = { information: 0, warning: 0, error: 0 };
  const lines: string[] = [];
  for (const { severity, line } of manifestOutcomeLines(manifest)) {
    counts[severity]++;
    lines.push(line);
  }
  for (const text of issueFiles) {
    for (const line of text.split('\n')) {
      if (!line) continue;
      const severity = (JSON.parse(line) as { issue?: Array<{ severity?: Severity }> }).issue?.[0]?.severity ?? 'error';
      counts[severity]++;
      lines.push(line);
    }
  }
  return {
    manifestUrl: manifest.url,
    url,
    text: `${lines.join('\n')}\n`,
    countSeverity: (['information', 'warning', 'error'] as const).filter((s) => counts[s] > 0).map((code) => ({ code, count: counts[code] })),
  };
}

/** The status manifest's page `page` (from 1), `pageSize` outcome items a page. */
export function statusManifest(status: SubmissionStatus, outcomes: OutcomeFile[], page: number, pageSize: number, pageUrl: (page: number) => string): Record<string, unknown> {
  const items = outcomes.slice((page - 1) * pageSize, page * pageSize);
  const more = outcomes.length > page * pageSize;
  return {
    manifestType: SUBMIT_STATUS_MANIFEST_TYPE,
    submissionId: status.submissionId,
    transactionTime: status.completedAt ?? status.startedAt,
    requiresAccessToken: true,
    outputFormat: 'application/fhir+ndjson',
    output: [],
    outcome: items.map((o) => ({ url: o.url, manifestUrl: o.manifestUrl, fileSize: Buffer.byteLength(o.text), countSeverity: o.countSeverity })),
    ...(more ? { link: [{ relation: 'next', url: pageUrl(page + 1) }] } : {}),
  };
}

/** `X-Progress` of a running submission (under 100 characters). */
export function submissionProgress(status: SubmissionStatus): string {
  const files = status.manifests.flatMap((m) => m.files);
  const done = files.filter((f) => f.state === 'done' || f.state === 'failed').length;
  const written = files.reduce((n, f) => n + (f.load?.written ?? 0), 0);
  return `${status.phase}: ${status.manifests.length} manifests, ${done} of ${files.length} files, ${written} resources written`.slice(0, 99);
}
