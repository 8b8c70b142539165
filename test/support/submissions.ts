/** `$bulk-submit` from a test: the Parameters a provider sends, polling the status to its manifest, and a store's contents to compare. */
import type { Pool } from 'pg';
import { waitFor } from './wait';

export interface SubmitOptions {
  submitter: { system: string; value: string };
  submissionId: string;
  manifestUrl?: string;
  fhirBaseUrl?: string;
  status?: string;
  replacesManifestUrl?: string;
  mode?: 'replace' | 'merge';
  headers?: Array<[string, string]>;
  extra?: Array<Record<string, unknown>>;
}

export function submitBody(o: SubmitOptions): Record<string, unknown> {
  const parameter: Array<Record<string, unknown>> = [
    { name: 'submitter', valueIdentifier: o.submitter },
    { name: 'submissionId', valueString: o.submissionId },
  ];
  if (o.status) parameter.push({ name: 'submissionStatus', valueCoding: { system: 'http://hl7.org/fhir/event-status', code: o.status } });
  if (o.manifestUrl) parameter.push({ name: 'manifestUrl', valueUrl: o.manifestUrl }, { name: 'fhirBaseUrl', valueUrl: o.fhirBaseUrl ?? new URL(o.manifestUrl).origin });
  if (o.replacesManifestUrl) parameter.push({ name: 'replacesManifestUrl', valueUrl: o.replacesManifestUrl });
  if (o.mode) parameter.push({ name: 'import', part: [{ name: 'parameterUrl', valueUri: 'urn:bulkflow:import:mode' }, { name: 'parameterValue', valueCode: o.mode }] });
  for (const [name, value] of o.headers ?? []) parameter.push({ name: 'fileRequestHeader', part: [{ name: 'headerName', valueString: name }, { name: 'headerValue', valueString: value }] });
  parameter.push(...(o.extra ?? []));
  return { resourceType: 'Parameters', parameter };
}

export async function submit(fhir: string, o: SubmitOptions, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${fhir}/$bulk-submit`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json', ...headers }, body: JSON.stringify(submitBody(o)) });
}

export interface StatusManifest {
  submissionId: string;
  manifestType: string;
  outcome: Array<{ url: string; manifestUrl: string; fileSize: number; countSeverity: Array<{ code: string; count: number }> }>;
  link?: Array<{ relation: string; url: string }>;
}

/** Polls `$bulk-submit-status` until the submission's manifest is served; returns it. */
export async function awaitSubmission(fhir: string, submitter: SubmitOptions['submitter'], submissionId: string, timeoutMs = 120_000, headers: Record<string, string> = {}): Promise<{ statusUrl: string; manifest: StatusManifest }> {
  const query = new URLSearchParams({ submitter: `${submitter.system}|${submitter.value}`, submissionId });
  const kick = await fetch(`${fhir}/$bulk-submit-status?${query}`, { headers });
  if (kick.status !== 202) throw new Error(`$bulk-submit-status answered ${kick.status}: ${await kick.text()}`);
  const statusUrl = kick.headers.get('content-location')!;
  return { statusUrl, manifest: await pollSubmission(statusUrl, timeoutMs, headers) };
}

/** Polls a submission's (or an import's) status URL until it answers its status manifest. */
export async function pollSubmission(statusUrl: string, timeoutMs = 120_000, headers: Record<string, string> = {}): Promise<StatusManifest> {
  let manifest: StatusManifest | undefined;
  await waitFor(
    async () => {
      const res = await fetch(statusUrl, { headers }).catch(() => undefined);
      if (!res) return false;
      if (res.status === 200) {
        manifest = (await res.json()) as StatusManifest;
        return true;
      }
      const body = await res.text();
      if (res.status !== 202 && res.status !== 503) throw new Error(`the status answered ${res.status}: ${body}`);
      return false;
    },
    timeoutMs,
    'the submission to end',
  );
  return manifest!;
}

/** Every current resource of a tenant as `Type/id` → its content without the store's meta (what a copy must hold). */
export async function storeContents(pool: Pool, tenant: string): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ resource_type: string; id: string; body: string }>(
    `SELECT resource_type, id, body FROM resource_versions WHERE tenant = $1 AND superseded_at IS NULL AND NOT deleted`,
    [tenant],
  );
  const contents = new Map<string, string>();
  for (const row of rows) {
    const resource = JSON.parse(row.body) as Record<string, unknown> & { meta?: Record<string, unknown> };
    const { versionId: _v, lastUpdated: _l, ...meta } = resource.meta ?? {};
    const rest = { ...resource, meta: Object.keys(meta).length > 0 ? meta : undefined };
    contents.set(`${row.resource_type}/${row.id}`, JSON.stringify(sortKeys(rest)));
  }
  return contents;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => [k, sortKeys(v)]),
  );
}

/** How many versions a tenant's store holds (a load written twice would add some). */
export async function versionCount(pool: Pool, tenant: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM resource_versions WHERE tenant = $1', [tenant]);
  return Number(rows[0].n);
}
