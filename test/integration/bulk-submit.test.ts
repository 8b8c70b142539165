/**
 * `$bulk-submit` between two bulkflow instances (two tenants of the test database, each with its
 * API and worker): the provider's `$export` manifest submitted to the recipient, which ends with
 * exactly the provider's resources; a second load of the same files writes nothing; a replacing
 * manifest removes what it no longer carries; `merge` keeps what the recipient holds; a file
 * server that drops the connection mid-file is resumed with a range request; refused lines are
 * reported with their line numbers; and every refused request starts nothing.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generatePopulation } from '../../src/generate/population';
import { submissionJobId } from '../../src/http/routes/bulk-submit';
import type { SubmissionStatus } from '../../src/contracts/bulk-submit';
import { uniqueTenant } from '../support/database';
import { kickOff, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';
import { awaitSubmission, pollSubmission, storeContents, submit, submitBody, versionCount } from '../support/submissions';
import { waitFor } from '../support/wait';

jest.setTimeout(180_000);

const submitter = { system: 'https://provider.test/ids', value: 'provider-a' };

describe('$bulk-submit between two instances', () => {
  let provider: ExportStack;
  let recipient: ExportStack;
  let files: Server;
  let filesUrl: string;
  const ranges: string[] = [];
  let dropOnce = true;
  /** `/held.ndjson` answers only once this is called: a file that is still loading. */
  let releaseHeld: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (releaseHeld = resolve));
  const recipientTenant = uniqueTenant('recipient');
  /** The hand-made provider's one data file: valid Patients (a few batches' worth, so some are committed before the drop) and three bad lines. */
  const patients = Array.from({ length: 2500 }, (_, i) => ({ resourceType: 'Patient', id: `hand-${i}`, gender: i % 2 ? 'male' : 'female', name: [{ family: `Family${i}` }] }));
  const handFile = Buffer.from(
    [...patients.slice(0, 20).map((p) => JSON.stringify(p)), '{not json', JSON.stringify({ resourceType: 'Observation', id: 'o1', status: 'final', code: {} }), JSON.stringify({ resourceType: 'Patient', gender: 'other' }), ...patients.slice(20).map((p) => JSON.stringify(p))].join('\n') + '\n',
  );

  beforeAll(async () => {
    provider = await startExportStack({ settings: { partitionSize: 200, maxPartResources: 150 } });
    await provider.startWorker();
    const resources = [...generatePopulation({ patients: 12, seed: 35 })];
    await provider.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
    // A provider's file server: a manifest, and a file whose first answer drops the connection half way.
    files = createServer((req, res) => {
      if (req.url === '/manifest.json') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ transactionTime: new Date().toISOString(), requiresAccessToken: false, output: [{ type: 'Patient', url: `${filesUrl}/Patient.ndjson` }], error: [] }));
        return;
      }
      const other = /^\/(held|late)\.(json|ndjson)$/.exec(req.url ?? '');
      if (other?.[2] === 'json') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ transactionTime: new Date().toISOString(), requiresAccessToken: false, output: [{ type: 'Patient', url: `${filesUrl}/${other[1]}.ndjson` }], error: [] }));
        return;
      }
      if (other) {
        const body = [0, 1, 2].map((i) => JSON.stringify({ resourceType: 'Patient', id: `${other[1]}-${i}` })).join('\n') + '\n';
        if (other[1] === 'held') void held.then(() => res.end(body));
        else res.end(body);
        return;
      }
      if (req.url !== '/Patient.ndjson') return void res.writeHead(404).end();
      const range = req.headers.range;
      if (range) ranges.push(range);
      const from = range ? Number(/bytes=(\d+)-/.exec(range)![1]) : 0;
      res.writeHead(range ? 206 : 200, { 'Accept-Ranges': 'bytes', 'Content-Length': handFile.length - from, ...(range ? { 'Content-Range': `bytes ${from}-${handFile.length - 1}/${handFile.length}` } : {}) });
      if (dropOnce && !range) {
        dropOnce = false;
        res.write(handFile.subarray(0, Math.floor(handFile.length * 0.6)), () => setTimeout(() => res.socket?.destroy(), 50));
        return;
      }
      res.end(handFile.subarray(from));
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    recipient = await startExportStack({
      tenant: recipientTenant,
      submitters: [{ tenant: recipientTenant, system: submitter.system, value: submitter.value, allowedUrls: [`${provider.fhir}/`, `${filesUrl}/`] }],
    });
    await recipient.startWorker();
  });

  afterAll(async () => {
    await recipient?.close();
    await provider?.close();
    files?.close();
  });

  /** A provider export's manifest URL (its status URL, which answers 200 with the manifest once complete). */
  async function exported(query = ''): Promise<string> {
    const statusUrl = await kickOff(provider, query);
    await pollUntilDone(statusUrl, 60_000);
    return statusUrl;
  }

  it("loads exactly the provider's resources, and a second load of the same files writes nothing", async () => {
    const manifestUrl = await exported();
    const first = await submit(recipient.fhir, { submitter, submissionId: 'loop-1', manifestUrl, fhirBaseUrl: provider.fhir });
    expect(first.status).toBe(200);
    expect(first.headers.get('content-location')).toMatch(/\/bulk-submit-status\/[A-Za-z0-9_-]{22}$/);
    // Still open: the status answers 202 with progress until the provider says it is complete.
    const statusUrl = first.headers.get('content-location')!;
    const open = await fetch(statusUrl);
    expect(open.status).toBe(202);
    expect(open.headers.get('x-progress')).toMatch(/open/);
    expect((await submit(recipient.fhir, { submitter, submissionId: 'loop-1', status: 'completed' })).status).toBe(200);
    const { manifest } = await awaitSubmission(recipient.fhir, submitter, 'loop-1');

    const expected = await storeContents(provider.pool, provider.store.tenant);
    const loaded = await storeContents(recipient.pool, recipientTenant);
    expect(loaded.size).toBe(expected.size);
    expect([...loaded.entries()].filter(([k, v]) => expected.get(k) !== v)).toEqual([]);

    expect(manifest.manifestType).toBe('http://hl7.org/fhir/uv/bulkdata/StructureDefinition/BulkSubmitStatusManifest');
    expect(manifest.submissionId).toBe('loop-1');
    expect(manifest.outcome).toHaveLength(1);
    expect(manifest.outcome[0].manifestUrl).toBe(manifestUrl);
    const outcome = await (await fetch(manifest.outcome[0].url)).text();
    expect(Buffer.byteLength(outcome)).toBe(manifest.outcome[0].fileSize);
    expect(outcome).toContain(`${expected.size} resources written`);
    expect(manifest.outcome[0].countSeverity).toEqual([{ code: 'information', count: outcome.trim().split('\n').length }]);

    // The same files again, in a new submission: every resource unchanged, no version added.
    const versions = await versionCount(recipient.pool, recipientTenant);
    expect((await submit(recipient.fhir, { submitter, submissionId: 'loop-2', manifestUrl, fhirBaseUrl: provider.fhir, status: 'completed' })).status).toBe(200);
    const again = await awaitSubmission(recipient.fhir, submitter, 'loop-2');
    expect(await versionCount(recipient.pool, recipientTenant)).toBe(versions);
    const againText = await (await fetch(again.manifest.outcome[0].url)).text();
    expect(againText).toContain(`0 resources written, ${expected.size} unchanged`);
  });

  it('removes what a replacing manifest no longer carries', async () => {
    const everything = await exported();
    const patientsOnly = await exported('?_type=Patient');
    const id = 'replace-1';
    expect((await submit(recipient.fhir, { submitter, submissionId: id, manifestUrl: everything, fhirBaseUrl: provider.fhir })).status).toBe(200);
    // The replacement names a manifest of this submission; it may come while the first still loads.
    expect((await submit(recipient.fhir, { submitter, submissionId: id, manifestUrl: patientsOnly, fhirBaseUrl: provider.fhir, replacesManifestUrl: everything, status: 'completed' })).status).toBe(200);
    const { manifest } = await awaitSubmission(recipient.fhir, submitter, id);
    expect(manifest.outcome.map((o) => o.manifestUrl)).toEqual([everything, patientsOnly]);
    const provided = await storeContents(provider.pool, provider.store.tenant);
    const loaded = await storeContents(recipient.pool, recipientTenant);
    const providedPatients = [...provided.keys()].filter((k) => k.startsWith('Patient/'));
    // Earlier tests' copies are of the same resources: the replaced manifest's non-Patients are gone, every Patient stays.
    expect([...loaded.keys()].filter((k) => provided.has(k)).sort()).toEqual(providedPatients.sort());
    const replacing = await (await fetch(manifest.outcome[1].url)).text();
    expect(replacing).toContain(`${provided.size - providedPatients.length} resources of ${everything} it replaces removed`);
  });

  it('resumes a dropped file with a range request, reports refused lines by number, and keeps stored resources in merge', async () => {
    // One of the hand-made Patients is held already, with other content: merge keeps it.
    await recipient.store.put({ ...patients[3], gender: 'unknown' });
    const id = 'hand-1';
    expect((await submit(recipient.fhir, { submitter, submissionId: id, manifestUrl: `${filesUrl}/manifest.json`, fhirBaseUrl: filesUrl, mode: 'merge', status: 'completed' })).status).toBe(200);
    const { manifest } = await awaitSubmission(recipient.fhir, submitter, id);
    const outcome = await (await fetch(manifest.outcome[0].url)).text();
    expect(ranges.length).toBeGreaterThan(0);
    expect(Number(/bytes=(\d+)-/.exec(ranges[0])![1])).toBeGreaterThan(0);
    const loaded = await storeContents(recipient.pool, recipientTenant);
    const genders = patients.map((p) => (JSON.parse(loaded.get(`Patient/${p.id}`) ?? '{}') as { gender?: string }).gender);
    expect(genders).toEqual(patients.map((p) => (p.id === 'hand-3' ? 'unknown' : p.gender)));
    expect(outcome).toContain('line 21 is not JSON');
    expect(outcome).toContain('line 22 holds a Observation in a file of Patient');
    expect(outcome).toContain('line 23: a submitted resource needs an id');
    expect(outcome).toContain('2499 written, 0 unchanged, 1 kept, 3 refused');
    expect(manifest.outcome[0].countSeverity).toContainEqual({ code: 'error', count: 3 });
  });

  it('after completed, while files still load, refuses a manifest, a replacement and a stop with 409: nothing answered 200 is dropped', async () => {
    const id = 'closing-1';
    const heldUrl = `${filesUrl}/held.json`;
    const lateUrl = `${filesUrl}/late.json`;
    const first = await submit(recipient.fhir, { submitter, submissionId: id, manifestUrl: heldUrl, fhirBaseUrl: filesUrl, status: 'completed' });
    expect(first.status).toBe(200);
    const statusUrl = first.headers.get('content-location')!;
    const submission = recipient.client.workflow.getHandle(statusUrl.split('/').pop()!);
    await waitFor(async () => (await submission.query<SubmissionStatus>('submissionStatus')).manifests[0]?.files[0]?.state === 'loading', 30_000, 'the held file to be loading');
    const late: Array<[string, Parameters<typeof submit>[1]]> = [
      ['a manifest', { submitter, submissionId: id, manifestUrl: lateUrl, fhirBaseUrl: filesUrl }],
      ['a replacing manifest', { submitter, submissionId: id, manifestUrl: lateUrl, fhirBaseUrl: filesUrl, replacesManifestUrl: heldUrl }],
      ['a stop', { submitter, submissionId: id, status: 'stopped' }],
    ];
    for (const [what, options] of late) {
      const res = await submit(recipient.fhir, options);
      const outcome = (await res.json()) as { resourceType: string; issue: Array<{ code: string; diagnostics: string }> };
      expect([what, res.status, outcome.issue[0].code]).toEqual([what, 409, 'conflict']);
      expect(outcome.issue[0].diagnostics).toBe(`submission ${id} is complete and loading: it takes no more requests`);
    }
    expect((await fetch(statusUrl)).headers.get('x-progress')).toMatch(/^loading: 1 manifests, 0 of 1 files/);
    releaseHeld();
    const { manifest } = await awaitSubmission(recipient.fhir, submitter, id);
    expect(manifest.outcome.map((o) => o.manifestUrl)).toEqual([heldUrl]);
    const loaded = await storeContents(recipient.pool, recipientTenant);
    expect(['held-0', 'held-1', 'held-2', 'late-0'].map((p) => loaded.has(`Patient/${p}`))).toEqual([true, true, true, false]);
  });

  it('refuses what it cannot take, and starts nothing', async () => {
    const manifestUrl = `${filesUrl}/manifest.json`;
    const cases: Array<[Record<string, unknown>, number, RegExp]> = [
      [submitBody({ submitter: { system: 'https://other.test', value: 'x' }, submissionId: 'r1', manifestUrl }), 403, /not a provider this tenant accepts/],
      [submitBody({ submitter, submissionId: 'r2', manifestUrl: 'http://127.0.0.1:9/elsewhere.json' }), 403, /not under a URL allowed/],
      [submitBody({ submitter, submissionId: 'r3', manifestUrl, extra: [{ name: 'fileEncryptionKey', part: [{ name: 'value', valueString: 'k' }] }] }), 400, /JWE/],
      [submitBody({ submitter, submissionId: 'r4' }), 400, /needs a manifestUrl, a submissionStatus, or both/],
      [submitBody({ submitter, submissionId: 'r5', status: 'finished' }), 400, /submissionStatus must be/],
      [submitBody({ submitter, submissionId: 'r6', manifestUrl, headers: [['Host', 'evil']] }), 400, /sets Host itself/],
      [{ resourceType: 'Parameters', parameter: [{ name: 'submissionId', valueString: 'r7' }] }, 400, /submitter is required/],
    ];
    for (const [body, status, message] of cases) {
      const res = await fetch(`${recipient.fhir}/$bulk-submit`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(body) });
      const outcome = (await res.json()) as { resourceType: string; issue: Array<{ diagnostics: string }> };
      expect([res.status, outcome.resourceType]).toEqual([status, 'OperationOutcome']);
      expect(outcome.issue[0].diagnostics).toMatch(message);
    }
    for (const id of ['r2', 'r3', 'r4', 'r5', 'r6']) {
      await expect(recipient.client.workflow.getHandle(submissionJobId(recipientTenant, submitter, id)).describe()).rejects.toThrow(/not found/i);
    }
  });

  it('accepts the codes and spelling of earlier drafts (complete, FHIRBaseUrl)', async () => {
    const manifestUrl = await exported('?_type=Organization');
    const body = submitBody({ submitter, submissionId: 'draft-1' });
    (body.parameter as unknown[]).push(
      { name: 'submissionStatus', valueCoding: { code: 'complete' } },
      { name: 'manifestUrl', valueString: manifestUrl },
      { name: 'FHIRBaseUrl', valueString: provider.fhir },
    );
    const res = await fetch(`${recipient.fhir}/$bulk-submit`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    const { manifest } = await awaitSubmission(recipient.fhir, submitter, 'draft-1');
    expect(manifest.outcome[0].manifestUrl).toBe(manifestUrl);
  });

  it('cancels a submission by DELETE on its status URL', async () => {
    const res = await submit(recipient.fhir, { submitter, submissionId: 'cancel-1' , status: 'in-progress' });
    expect(res.status).toBe(200);
    const statusUrl = res.headers.get('content-location')!;
    expect((await fetch(statusUrl)).status).toBe(202);
    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(statusUrl)).status).toBe(404);
  });

  /** `$import` (ping and pull) as a client calls it. */
  const importFrom = (exportUrl: string, exportType?: string) =>
    fetch(`${recipient.fhir}/$import`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'exportUrl', valueUrl: exportUrl }, ...(exportType ? [{ name: 'exportType', valueCode: exportType }] : [])] }),
    });

  it('imports by ping and pull (dynamic): runs the export at the provider, polls it, loads what it lists', async () => {
    // Changed at the provider after every earlier copy: only a new export carries these.
    const changed = (await provider.pool.query<{ body: string }>(`SELECT body FROM resource_versions WHERE tenant = $1 AND resource_type = 'Condition' AND superseded_at IS NULL AND NOT deleted ORDER BY id LIMIT 3`, [provider.store.tenant])).rows.map((r) => JSON.parse(r.body) as { id: string });
    await provider.store.write(changed.map((c) => ({ op: 'put' as const, resource: { ...c, resourceType: 'Condition', clinicalStatus: { text: 'imported by ping and pull' } } as never })));
    const res = await importFrom(`${provider.fhir}/$export?_type=Condition`);
    expect(res.status).toBe(202);
    const manifest = await pollSubmission(res.headers.get('content-location')!);
    expect(manifest.outcome).toHaveLength(1);
    expect(manifest.outcome[0].manifestUrl).toBe(`${provider.fhir}/$export?_type=Condition`);
    // The Temporal UI shows the provider's URL without its query (a _typeFilter may name a patient).
    const handle = recipient.client.workflow.getHandle(res.headers.get('content-location')!.split('/').pop()!);
    const { currentDetails } = await handle.query<{ currentDetails: string }>('__temporal_workflow_metadata');
    const summary = await (await handle.describe()).staticSummary();
    expect([currentDetails, summary].filter((text) => text?.includes('_type=Condition'))).toEqual([]);
    expect(currentDetails).toContain(`${provider.fhir}/$export?…`);
    const provided = await storeContents(provider.pool, provider.store.tenant);
    const loaded = await storeContents(recipient.pool, recipientTenant);
    const conditions = [...provided.keys()].filter((k) => k.startsWith('Condition/'));
    expect(conditions.length).toBeGreaterThan(3);
    expect(conditions.filter((k) => loaded.get(k) !== provided.get(k))).toEqual([]);
    expect(changed.map((c) => loaded.get(`Condition/${c.id}`))).toEqual(changed.map(() => expect.stringContaining('imported by ping and pull')));
  });

  it('imports a static manifest by ping and pull', async () => {
    const res = await importFrom(`${filesUrl}/manifest.json`, 'static');
    expect(res.status).toBe(202);
    const manifest = await pollSubmission(res.headers.get('content-location')!);
    expect(manifest.outcome.map((o) => o.manifestUrl)).toEqual([`${filesUrl}/manifest.json`]);
    const outcome = await (await fetch(manifest.outcome[0].url)).text();
    expect(outcome).toContain('line 21 is not JSON');
    const loaded = await storeContents(recipient.pool, recipientTenant);
    expect(patients.filter((p) => !loaded.has(`Patient/${p.id}`))).toEqual([]);
  });

  it.each([
    ['an exportUrl of no allowed provider', 'http://127.0.0.1:9/fhir/$export', undefined, 403, /not under a URL allowed/],
    ['an unknown exportType', 'PROVIDER/$export', 'later', 400, /exportType must be dynamic or static/],
    ['an exportUrl that is not http(s)', 'file:///etc/passwd', undefined, 400, /exportUrl/],
  ])('refuses $import with %s', async (_name, url, type, status, message) => {
    const res = await importFrom(url.replace('PROVIDER', provider.fhir), type);
    const outcome = (await res.json()) as { resourceType: string; issue: Array<{ diagnostics: string }> };
    expect([res.status, outcome.resourceType]).toEqual([status, 'OperationOutcome']);
    expect(outcome.issue[0].diagnostics).toMatch(message);
  });
});
