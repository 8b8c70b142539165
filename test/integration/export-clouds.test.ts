/**
 * Every feature that writes files, on S3 (versitygw) and Azure Blob (Azurite): `$export` at the
 * three levels with the manifest's signed URLs (S3 presigned GETs, Azure SAS) served by the
 * storage server itself, `$sql-export` in each format, an asynchronous request's answer, a
 * `$bulk-submit` outcome file, and expiry that deletes every file. The expected content comes from the generated population, not
 * from bulkflow.
 */
import { generatePopulation } from '../../src/generate/population';
import { kickOff, pollUntilDone, startExportStack, downloadAll, type ExportStack } from '../support/export-stack';
import { completed, downloaded } from '../support/view-exports';
import { waitFor } from '../support/wait';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { uniqueTenant } from '../support/database';
import { awaitSubmission, submit } from '../support/submissions';

jest.setTimeout(180_000);

const population = [...generatePopulation({ patients: 6, seed: 4242 })] as Array<{ resourceType: string; id: string; gender?: string; subject?: { reference?: string }; member?: Array<{ entity: { reference: string } }> }>;
const patients = population.filter((r) => r.resourceType === 'Patient');
const group = population.find((r) => r.resourceType === 'Group')!;

describe.each(['s3', 'azure'] as const)('files on %s', (backend) => {
  let stack: ExportStack;
  const versions = new Map<string, string>();

  let files: Server;
  let filesUrl = '';
  const submitter = { system: 'https://provider.test/ids', value: `cloud-${backend}` };

  beforeAll(async () => {
    // A provider for $bulk-submit: a manifest of one file with a line that is not JSON.
    files = createServer((req, res) => {
      if (req.url === '/manifest.json') return void res.end(JSON.stringify({ transactionTime: new Date().toISOString(), requiresAccessToken: false, output: [{ type: 'Patient', url: `${filesUrl}/Patient.ndjson` }], error: [] }));
      res.end(`${JSON.stringify({ resourceType: 'Patient', id: `submitted-${backend}` })}\n{not json\n`);
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    const tenant = uniqueTenant(backend);
    stack = await startExportStack({
      backend,
      tenant,
      signedUrlTtlSeconds: 120,
      settings: { retentionMs: 20_000, partitionSize: 200, maxPartResources: 60 },
      asyncSyncWaitMs: 0,
      submitters: [{ tenant, system: submitter.system, value: submitter.value, allowedUrls: [`${filesUrl}/`] }],
    });
    for (const r of await stack.store.write(population.map((resource) => ({ op: 'put' as const, resource: resource as never })))) versions.set(`${r.resourceType}/${r.id}`, `${r.resourceType}/${r.id}/${r.versionId}`);
    await stack.startWorker();
  });
  afterAll(async () => {
    await stack?.close();
    files?.close();
  });

  it('exports the system, Patient and Group levels into the bucket, each file served by the server through its signed URL', async () => {
    const all = [...versions.values()].sort();
    const compartment = (ids: string[]) => all.filter((key) => {
      const resource = population.find((r) => `${r.resourceType}/${r.id}` === key.split('/').slice(0, 2).join('/'))!;
      return resource.resourceType === 'Patient' ? ids.includes(resource.id) : ids.some((id) => resource.subject?.reference === `Patient/${id}`);
    });
    const members = group.member!.map((m) => m.entity.reference.split('/')[1]);
    for (const [query, expected] of [
      ['', all],
      ['?_type=Patient,Encounter,Observation', all.filter((k) => /^(Patient|Encounter|Observation)\//.test(k))],
    ] as const) {
      const { manifest } = await pollUntilDone(await kickOff(stack, query));
      expect(manifest.requiresAccessToken).toBe(false);
      expect(manifest.output.every((o) => !o.url.includes('/fhir/'))).toBe(true);
      expect((await downloadAll(manifest)).keys.sort()).toEqual([...expected]);
    }
    const patientLevel = await fetch(`${stack.fhir}/Patient/$export?_type=Patient,Encounter`, { headers: { Accept: 'application/fhir+json', Prefer: 'respond-async' } });
    const patientKeys = (await downloadAll((await pollUntilDone(patientLevel.headers.get('content-location')!)).manifest)).keys.sort();
    expect(patientKeys).toEqual(compartment(patients.map((p) => p.id)).filter((k) => /^(Patient|Encounter)\//.test(k)));
    const groupLevel = await fetch(`${stack.fhir}/Group/${group.id}/$export?_type=Patient,Condition`, { headers: { Accept: 'application/fhir+json', Prefer: 'respond-async' } });
    const groupKeys = (await downloadAll((await pollUntilDone(groupLevel.headers.get('content-location')!)).manifest)).keys.sort();
    expect(groupKeys).toEqual(compartment(members).filter((k) => /^(Patient|Condition)\//.test(k)));
    expect(groupKeys.length).toBeGreaterThan(members.length);

    // Nothing secret in the engine: no key, SAS or presigned URL in any of these exports' histories (read as an operator's codec would).
    const secrets = backend === 's3' ? [process.env.TEST_S3_SECRET_ACCESS_KEY!, process.env.TEST_S3_ACCESS_KEY_ID!, 'X-Amz-Signature', 'X-Amz-Credential'] : ['AccountKey', 'sig=', 'Eby8vdM02'];
    const codec = stack.client.options.loadedDataConverter.payloadCodecs[0];
    let histories = 0;
    for await (const execution of stack.client.workflow.list({ query: `TaskQueue = '${stack.taskQueue}'` })) {
      const events = (await stack.client.workflow.getHandle(execution.workflowId).fetchHistory()).events ?? [];
      const payloads = events.flatMap((e) => [...(e.workflowExecutionStartedEventAttributes?.input?.payloads ?? []), ...(e.activityTaskScheduledEventAttributes?.input?.payloads ?? []), ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []), ...(e.workflowExecutionCompletedEventAttributes?.result?.payloads ?? [])]);
      const clear = (await codec.decode(payloads)).map((p) => Buffer.from(p.data ?? []).toString('utf8')).join('\n');
      expect(clear).toContain('Patient');
      expect(secrets.filter((secret) => clear.includes(secret) || JSON.stringify(events).includes(secret))).toEqual([]);
      histories++;
    }
    expect(histories).toBeGreaterThanOrEqual(4);
  });

  it.each(['ndjson', 'csv', 'json', 'parquet'])('writes $sql-export results as %s', async (format) => {
    const res = await fetch(`${stack.fhir}/$sql-export`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json', Prefer: 'respond-async' },
      body: JSON.stringify({
        resourceType: 'Parameters',
        parameter: [
          { name: 'subject', part: [{ name: 'name', valueString: 'patients' }, { name: 'subjectResource', resource: { resourceType: 'ViewDefinition', resource: 'Patient', select: [{ column: [{ name: 'id', path: 'id' }, { name: 'gender', path: 'gender' }] }] } }] },
          { name: '_format', valueCode: format },
        ],
      }),
    });
    expect(res.status).toBe(202);
    const { body } = await completed(res.headers.get('content-location')!);
    const rows = (await downloaded(body, format)).patients.map((r) => `${String(r.id)}:${String(r.gender)}`).sort();
    expect(rows).toEqual(patients.map((p) => `${p.id}:${p.gender}`).sort());
  });

  it('keeps an asynchronous answer in the bucket', async () => {
    const res = await fetch(`${stack.fhir}/Patient?_count=100`, { headers: { Prefer: 'respond-async' } });
    expect(res.status).toBe(202);
    const statusUrl = res.headers.get('content-location')!;
    let done: Response | undefined;
    await waitFor(async () => (done = await fetch(statusUrl, { redirect: 'manual' })).status !== 202, 60_000, 'the async answer');
    expect(done!.status).toBe(303);
    const bundle = (await (await fetch(done!.headers.get('location')!)).json()) as { type: string; entry: Array<{ resource: { entry: Array<{ resource: { id: string } }> } }> };
    expect(bundle.type).toBe('batch-response');
    expect(bundle.entry[0].resource.entry.map((e) => e.resource.id).sort()).toEqual(patients.map((p) => p.id).sort());
    const id = statusUrl.split('/').pop()!;
    expect((await stack.output.list(`${stack.store.tenant}/async-${id}/`)).length).toBeGreaterThan(0);
  });

  it('keeps a $bulk-submit outcome file in the bucket, with its refused line', async () => {
    expect((await submit(stack.fhir, { submitter, submissionId: 'cloud-1', manifestUrl: `${filesUrl}/manifest.json`, fhirBaseUrl: filesUrl, status: 'completed' })).status).toBe(200);
    const { manifest } = await awaitSubmission(stack.fhir, submitter, 'cloud-1');
    const outcome = await (await fetch(manifest.outcome[0].url)).text();
    expect(outcome).toContain('line 2 is not JSON');
    expect(outcome).toContain('1 written');
    expect((await stack.output.list(`${stack.store.tenant}/`)).some((key) => key.includes('issues') || key.includes('outcome'))).toBe(true);
  });

  it('deletes every file of an export when it expires', async () => {
    const statusUrl = await kickOff(stack, '?_type=Patient');
    await pollUntilDone(statusUrl);
    const id = statusUrl.split('/').pop()!;
    expect((await stack.output.list(`${stack.store.tenant}/${id}/`)).length).toBeGreaterThan(0);
    await waitFor(async () => (await stack.output.list(`${stack.store.tenant}/${id}/`)).length === 0, 60_000, 'the expired files to be deleted');
    // The files go first, then the workflow ends: from then on the status URL answers 404.
    await waitFor(async () => (await fetch(statusUrl)).status === 404, 30_000, 'the expired export to answer 404');
  });
});
