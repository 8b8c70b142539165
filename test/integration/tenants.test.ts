/** Multi-tenancy: tenants by path prefix or header never see each other's data or exports; a per-tenant cap on running exports. */
import { randomUUID } from 'node:crypto';
import { kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';
import { waitFor } from '../support/wait';

describe('tenants', () => {
  let stack: ExportStack;
  const other = `t${randomUUID().slice(0, 8)}`;
  let release: () => void = () => undefined;
  let gate = Promise.resolve();

  beforeAll(async () => {
    stack = await startExportStack({ tenantHeader: 'X-Tenant', maxRunningExports: 1 });
    await stack.startWorker((real) => ({
      ...real,
      exportPartition: async (input) => {
        await gate;
        return real.exportPartition(input);
      },
    }));
  });
  afterAll(async () => {
    release();
    await stack.close();
  });

  const put = (base: string, resource: Record<string, unknown>, headers: Record<string, string> = {}) =>
    fetch(`${base}/${resource.resourceType}/${resource.id}`, { method: 'PUT', headers: { 'Content-Type': 'application/fhir+json', ...headers }, body: JSON.stringify(resource) });

  it('keeps resources with the same ids apart, by /t/{tenant} prefix or header', async () => {
    const otherBase = `${stack.url}/t/${other}/fhir`;
    expect((await put(stack.fhir, { resourceType: 'Patient', id: 'shared', gender: 'female' })).status).toBe(201);
    expect((await put(otherBase, { resourceType: 'Patient', id: 'shared', gender: 'male' })).status).toBe(201);
    expect((await put(stack.fhir, { resourceType: 'Patient', id: 'only-default' })).status).toBe(201);

    const read = async (url: string, headers: Record<string, string> = {}) => ((await (await fetch(url, { headers })).json()) as { gender?: string }).gender;
    expect(await read(`${stack.fhir}/Patient/shared`)).toBe('female');
    expect(await read(`${otherBase}/Patient/shared`)).toBe('male');
    expect(await read(`${stack.fhir}/Patient/shared`, { 'X-Tenant': other })).toBe('male');
    expect((await fetch(`${otherBase}/Patient/only-default`)).status).toBe(404);
    const search = (await (await fetch(`${otherBase}/Patient`)).json()) as { total: number; entry: Array<{ fullUrl: string }> };
    expect(search.total).toBe(1);
    expect(search.entry[0].fullUrl).toBe(`${otherBase}/Patient/shared`);
    expect((await fetch(`${stack.fhir}/Patient`, { headers: { 'X-Tenant': 'Bad Tenant!' } })).status).toBe(400);
  });

  it("exports only the tenant's resources, and its export is invisible from other tenants", async () => {
    const otherBase = `${stack.url}/t/${other}/fhir`;
    const kick = await fetch(`${otherBase}/$export?_type=Patient`, { headers: kickoffHeaders });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    expect(statusUrl.startsWith(`${otherBase}/bulkstatus/`)).toBe(true);
    const { manifest } = await pollUntilDone(statusUrl);
    const lines = (await (await fetch(manifest.output[0].url)).text()).trim().split('\n').map((l) => JSON.parse(l) as { id: string; gender: string });
    expect(lines).toEqual([expect.objectContaining({ id: 'shared', gender: 'male' })]);
    expect(manifest.output[0].url.startsWith(`${otherBase}/bulkfiles/`)).toBe(true);

    const id = statusUrl.split('/').pop()!;
    const fileName = manifest.output[0].url.split('/').pop()!;
    expect((await fetch(`${stack.fhir}/bulkstatus/${id}`)).status).toBe(404);
    expect((await fetch(`${stack.fhir}/bulkfiles/${id}/${fileName}`)).status).toBe(404);
    expect((await fetch(`${stack.fhir}/bulkstatus/${id}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('answers 429 with Retry-After over the per-tenant cap of running exports; finished exports never count', async () => {
    gate = new Promise<void>((resolve) => (release = resolve));
    const first = await fetch(`${stack.fhir}/$export?_type=Patient`, { headers: kickoffHeaders });
    expect(first.status).toBe(202);
    // The cap counts through Temporal visibility, which may lag a moment behind a kick-off.
    await waitFor(async () => {
      const second = await fetch(`${stack.fhir}/$export?_type=Patient`, { headers: kickoffHeaders });
      await second.arrayBuffer();
      return second.status === 429;
    });
    const refused = await fetch(`${stack.fhir}/$export?_type=Patient`, { headers: kickoffHeaders });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await refused.json()) as { issue: Array<{ code: string }> }).issue[0].code).toBe('throttled');
    // Another tenant is not affected.
    expect((await fetch(`${stack.url}/t/${other}/fhir/$export?_type=Patient`, { headers: kickoffHeaders })).status).toBe(202);

    release();
    await pollUntilDone(first.headers.get('content-location')!);
    await waitFor(async () => {
      const res = await fetch(`${stack.fhir}/$export?_type=Patient`, { headers: kickoffHeaders });
      await res.arrayBuffer();
      return res.status === 202;
    });
  });

  it('holds the cap under a burst of concurrent kick-offs: exactly the cap accepted, the rest 429', async () => {
    const burst = `b${randomUUID().slice(0, 8)}`;
    const base = `${stack.url}/t/${burst}/fhir`;
    expect((await put(base, { resourceType: 'Patient', id: 'p1' })).status).toBe(201);
    gate = new Promise<void>((resolve) => (release = resolve)); // the accepted export stays running
    const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(`${base}/$export?_type=Patient`, { headers: kickoffHeaders }).then(async (res) => (await res.arrayBuffer(), res.status))));
    expect(answers.filter((s) => s === 202)).toHaveLength(1);
    expect(answers.filter((s) => s === 429)).toHaveLength(19);
    release();
  });
});
