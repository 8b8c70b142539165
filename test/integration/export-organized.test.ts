/** organizeOutputBy=Patient: files of per-patient blocks that read back into each patient's compartment. */
import { generatePopulation } from '../../src/generate/population';
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import { kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';

type Line = FhirResourceJson & { parameter?: Array<{ name: string; valueReference: { reference: string } }> };
interface OrganizedManifest {
  outputOrganizedBy?: string;
  output: Array<{ type?: string; url: string; count: number; continuesInFile?: string }>;
  error: unknown[];
}

/** The patients a generated resource belongs to, read from its JSON (every Patient reference is a compartment one). */
const patientsOf = (r: FhirResourceJson) => (r.resourceType === 'Patient' ? [r.id!] : [...JSON.stringify(r).matchAll(/"reference":"Patient\/([^"]+)"/g)].map((m) => m[1]));

describe('$export with organizeOutputBy=Patient', () => {
  let stack: ExportStack;
  const resources = [...generatePopulation({ patients: 5, seed: 31 })];
  const patients = resources.filter((r) => r.resourceType === 'Patient').map((r) => r.id!);

  beforeAll(async () => {
    // Tiny parts, so blocks span files; partitions of a few patients.
    stack = await startExportStack({ settings: { partitionSize: 400, maxPartResources: 90 } });
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  const kickOff = async (path: string, parameters: unknown[], prefer = 'respond-async') =>
    fetch(`${stack.fhir}${path}`, {
      method: 'POST',
      headers: { ...kickoffHeaders, Prefer: prefer, 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: parameters }),
    });

  it('writes one block per patient, headed by a Parameters resource, continuing across files as the manifest says', async () => {
    const res = await kickOff('/Patient/$export', [{ name: 'organizeOutputBy', valueString: 'Patient' }]);
    expect(res.status).toBe(202);
    const manifest = (await pollUntilDone(res.headers.get('content-location')!)).manifest as unknown as OrganizedManifest;
    expect(manifest.outputOrganizedBy).toBe('Patient');
    expect(manifest.output.length).toBeGreaterThan(patients.length); // blocks span files
    expect(manifest.output.every((item) => item.type === undefined)).toBe(true);

    const blocks = new Map<string, string[]>(); // patient -> Type/id in block order
    let continuing: string | undefined; // the patient whose block the previous file said continues
    for (const [i, item] of manifest.output.entries()) {
      const lines = (await (await fetch(item.url)).text()).trim().split('\n').map((l) => JSON.parse(l) as Line);
      expect(lines[0].resourceType).toBe('Parameters');
      expect(item.count).toBe(lines.filter((l) => l.resourceType !== 'Parameters').length);
      let current: string | undefined;
      for (const line of lines) {
        if (line.resourceType === 'Parameters') {
          expect(line.parameter![0].name).toBe('header');
          current = line.parameter![0].valueReference.reference.replace('Patient/', '');
          if (line === lines[0] && continuing) expect(current).toBe(continuing);
          if (!blocks.has(current)) {
            blocks.set(current, []);
          } else {
            expect(line === lines[0] && continuing === current).toBe(true); // a block is only ever resumed at the top of the next file
          }
          continue;
        }
        blocks.get(current!)!.push(`${line.resourceType}/${line.id}`);
      }
      continuing = item.continuesInFile ? current : undefined;
      if (item.continuesInFile) expect(item.continuesInFile).toBe(manifest.output[i + 1].url);
    }

    expect([...blocks.keys()].sort()).toEqual([...patients].sort());
    for (const [patient, block] of blocks) {
      expect(block[0]).toBe(`Patient/${patient}`);
      const expected = resources.filter((r) => patientsOf(r).includes(patient)).map((r) => `${r.resourceType}/${r.id}`);
      expect([...block].sort()).toEqual(expected.sort());
    }
  });

  it('refuses organizeOutputBy at system level or by another type under strict, and ignores it under lenient', async () => {
    const system = await fetch(`${stack.fhir}/$export?organizeOutputBy=Patient`, { headers: kickoffHeaders });
    expect(system.status).toBe(400);
    const other = await kickOff('/Patient/$export', [{ name: 'organizeOutputBy', valueString: 'Organization' }]);
    expect(other.status).toBe(400);
    expect(((await other.json()) as { issue: Array<{ expression: string[] }> }).issue[0].expression).toEqual(['organizeOutputBy']);

    const lenient = await kickOff('/Patient/$export', [{ name: 'organizeOutputBy', valueString: 'Organization' }, { name: '_type', valueString: 'Patient' }], 'respond-async, handling=lenient');
    const manifest = (await pollUntilDone(lenient.headers.get('content-location')!)).manifest as unknown as OrganizedManifest;
    expect(manifest.outputOrganizedBy).toBeUndefined();
    expect(manifest.output.every((item) => item.type === 'Patient')).toBe(true);
    expect(manifest.error).toHaveLength(1);
  });
});
