/** allowPartialManifests: manifest pages served while the export runs, immutable, paging to the full set. */
import { generatePopulation } from '../../src/generate/population';
import { kickoffHeaders, startExportStack, type ExportStack } from '../support/export-stack';
import { waitFor } from '../support/wait';

interface Page {
  output: Array<{ type: string; url: string; count: number }>;
  error: unknown[];
  link?: Array<{ relation: string; url: string }>;
}

describe('$export with allowPartialManifests', () => {
  let stack: ExportStack;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const resources = [...generatePopulation({ patients: 4, seed: 8 })];

  beforeAll(async () => {
    stack = await startExportStack({ settings: { partitionSize: 200, maxPartResources: 40, manifestPageFiles: 3 } });
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
    // Observation partitions after the first wait for the test: the export is still running while pages are read.
    await stack.startWorker((real) => ({
      ...real,
      exportPartition: async (input) => {
        if (input.partition.type === 'Observation' && input.partition.partition > 0) await gate;
        return real.exportPartition(input);
      },
    }));
  });
  afterAll(async () => {
    release();
    await stack.close();
  });

  it('serves full pages while running, then pages to every file exactly once; a page never changes', async () => {
    const kick = await fetch(`${stack.fhir}/$export?allowPartialManifests=true`, { headers: kickoffHeaders });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;

    let early: Response | undefined;
    await waitFor(async () => {
      const res = await fetch(statusUrl);
      if (res.status === 202 && res.headers.get('content-type')?.startsWith('application/json')) early = res;
      else await res.arrayBuffer();
      return early !== undefined;
    });
    const firstWhileRunning = (await early!.json()) as Page;
    expect(firstWhileRunning.output).toHaveLength(3);
    expect(firstWhileRunning.link).toEqual([{ relation: 'next', url: `${statusUrl}?page=2` }]);

    release();
    const files: string[] = [];
    let url: string | undefined = statusUrl;
    let final: Response | undefined;
    while (url) {
      const res = await fetch(url);
      if (res.status === 202 && !res.headers.get('content-type')?.startsWith('application/json')) {
        await res.arrayBuffer();
        await new Promise((resolve) => setTimeout(resolve, 1100)); // honour Retry-After
        continue;
      }
      const page = (await res.json()) as Page;
      if (url === statusUrl) expect(page.output).toEqual(firstWhileRunning.output); // immutable
      files.push(...page.output.map((o) => o.url));
      url = page.link?.find((l) => l.relation === 'next')?.url;
      if (!url) final = res;
    }
    expect(final!.status).toBe(200);
    expect(new Set(files).size).toBe(files.length);

    const lines = (await Promise.all(files.map(async (f) => (await (await fetch(f)).text()).trim().split('\n')))).flat();
    const exported = lines.map((l) => JSON.parse(l) as { resourceType: string; id: string }).map((r) => `${r.resourceType}/${r.id}`);
    expect(exported.sort()).toEqual(resources.map((r) => `${r.resourceType}/${r.id}`).sort());

    const again = await fetch(statusUrl);
    expect(again.status).toBe(200);
    expect(((await again.json()) as Page).output).toEqual(firstWhileRunning.output);
    expect((await fetch(`${statusUrl}?page=999`)).status).toBe(404);
    expect((await fetch(`${statusUrl}?page=zero`)).status).toBe(400);
  });

  it('refuses a non-boolean allowPartialManifests', async () => {
    const res = await fetch(`${stack.fhir}/$export?allowPartialManifests=yes`, { headers: kickoffHeaders });
    expect(res.status).toBe(400);
  });
});
