/**
 * `$export-v4`: the STU4 ballot's kick-off (POST Parameters only, one value per parameter,
 * `includeAssociatedData` a Coding) and manifest (`manifestType`, `outputFormat`, `outcome`, no
 * `request`, file sizes), beside `$export`, whose v2 manifest stays as it was.
 */
import { generatePopulation } from '../../src/generate/population';
import { kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';

interface Stu4Item {
  type?: string;
  url: string;
  count?: number;
  fileSize?: number;
}

interface Stu4Manifest {
  manifestType: string;
  transactionTime: string;
  requiresAccessToken: boolean;
  outputFormat: string;
  outputOrganizedBy?: string;
  output: Stu4Item[];
  outcome: Stu4Item[];
}

const BULK_DATA_MANIFEST = 'http://hl7.org/fhir/uv/bulkdata/StructureDefinition/BulkDataManifest';
const IAD = 'http://hl7.org/fhir/uv/bulkdata/CodeSystem/include-associated-data';

describe('$export-v4 (Bulk Data STU4 ballot)', () => {
  let stack: ExportStack;
  const resources = [...generatePopulation({ patients: 6, seed: 41 })];
  const keyOf = (r: { resourceType: string; id?: string }) => `${r.resourceType}/${r.id}`;

  beforeAll(async () => {
    stack = await startExportStack({ settings: { maxPartResources: 25 } });
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  const post = (path: string, parameter: object[], headers: Record<string, string> = kickoffHeaders) =>
    fetch(`${stack.fhir}${path}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter }) });

  async function exported(path: string, parameter: object[], headers?: Record<string, string>) {
    const kick = await post(path, parameter, headers);
    expect([kick.status, kick.status === 202 ? '' : await kick.text()]).toEqual([202, '']);
    const { manifest } = await pollUntilDone(kick.headers.get('content-location')!, 60_000);
    return manifest as unknown as Stu4Manifest & Record<string, unknown>;
  }

  /** Each file's bytes and lines, checked against its item's fileSize and count. */
  async function download(items: Stu4Item[]): Promise<Array<Record<string, unknown>>> {
    const lines: Array<Record<string, unknown>> = [];
    for (const item of items) {
      const body = Buffer.from(await (await fetch(item.url)).arrayBuffer());
      expect([item.url, body.length]).toEqual([item.url, item.fileSize]);
      const parsed = body.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      // A block's header (organizeOutputBy) is a Parameters line, not one of the resources counted.
      expect([item.url, parsed.filter((r) => r.resourceType !== 'Parameters').length]).toEqual([item.url, item.count]);
      lines.push(...parsed);
    }
    return lines;
  }

  it('serves the STU4 manifest: named model and format, outcome not error, no request, every file with its size; only the repeated _type values', async () => {
    const manifest = await exported('/$export-v4', [
      { name: '_type', valueString: 'Patient' },
      { name: '_type', valueString: 'Condition' },
    ]);
    expect(manifest.manifestType).toBe(BULK_DATA_MANIFEST);
    expect(manifest.outputFormat).toBe('application/fhir+ndjson');
    expect(manifest.requiresAccessToken).toBe(true);
    expect(['request', 'error'].filter((k) => k in manifest)).toEqual([]);
    expect(manifest.outcome).toEqual([]);
    expect(manifest.output.length).toBeGreaterThan(2);
    const lines = await download(manifest.output);
    const expected = resources.filter((r) => r.resourceType === 'Patient' || r.resourceType === 'Condition').map(keyOf).sort();
    expect(lines.map((r) => keyOf(r as { resourceType: string; id?: string })).sort()).toEqual(expected);
  });

  it('lists what lenient handling left out under outcome, as an OperationOutcome file of the right size', async () => {
    const manifest = await exported('/$export-v4', [{ name: '_type', valueString: 'Observation' }, { name: 'notAParameter', valueString: 'x' }], { ...kickoffHeaders, Prefer: 'respond-async, handling=lenient' });
    expect(manifest.outcome).toHaveLength(1);
    expect(manifest.outcome[0].type).toBeUndefined();
    const [outcome] = await download(manifest.outcome);
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(outcome)).toContain('notAParameter');
  });

  it('exports per-patient blocks at the Patient level with includeAssociatedData as a Coding', async () => {
    const manifest = await exported('/Patient/$export-v4', [
      { name: 'organizeOutputBy', valueString: 'Patient' },
      { name: 'includeAssociatedData', valueCoding: { system: IAD, code: 'LatestProvenanceResources' } },
    ]);
    expect(manifest.outputOrganizedBy).toBe('Patient');
    expect(manifest.output.every((item) => item.type === undefined && typeof item.fileSize === 'number')).toBe(true);
    const lines = await download(manifest.output);
    const patients = lines.filter((r) => r.resourceType === 'Patient').map((r) => r.id as string).sort();
    expect(patients).toEqual(resources.filter((r) => r.resourceType === 'Patient').map((r) => r.id).sort());
  });

  it('keeps $export on the v2 manifest, unchanged', async () => {
    const kick = await fetch(`${stack.fhir}/$export?_type=Patient`, { headers: kickoffHeaders });
    const { manifest } = await pollUntilDone(kick.headers.get('content-location')!, 60_000);
    expect(Object.keys(manifest).sort()).toEqual(['error', 'output', 'request', 'requiresAccessToken', 'transactionTime']);
    expect(Object.keys(manifest.output[0]).sort()).toEqual(['count', 'type', 'url']);
    expect(manifest.request).toBe(`${stack.fhir}/$export?_type=Patient`);
  });

  it.each([
    ['GET (STU4 has no GET kick-off)', () => fetch(`${stack.fhir}/$export-v4?_type=Patient`, { headers: kickoffHeaders }), 405, 'POST only'],
    ['a comma-delimited _type', () => post('/$export-v4', [{ name: '_type', valueString: 'Patient,Condition' }]), 400, 'repeat _type'],
    ['includeAssociatedData of another code system', () => post('/Patient/$export-v4', [{ name: 'includeAssociatedData', valueCoding: { system: 'http://example.org', code: 'LatestProvenanceResources' } }]), 400, 'includeAssociatedData'],
  ])('refuses %s with an OperationOutcome that says why', async (_name, send, status, says) => {
    const res = await send();
    const body = (await res.json()) as { resourceType: string; issue: Array<{ diagnostics: string }> };
    expect([res.status, body.resourceType]).toEqual([status, 'OperationOutcome']);
    expect(body.issue[0].diagnostics).toContain(says);
  });
});
