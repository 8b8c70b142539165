/** `GET [base]/{type}?...`: searchset Bundles with total, links and stable paging, on the store. */
import type { Pool } from 'pg';
import { generatePopulation } from '../../src/generate/population';
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import { ResourceStore } from '../../src/store/resource-store';
import { migratedPool, uniqueTenant } from '../support/database';
import { listen } from '../support/http';

interface SearchBundle {
  resourceType: string;
  type: string;
  total: number;
  link: Array<{ relation: string; url: string }>;
  entry?: Array<{ fullUrl: string; resource: FhirResourceJson & { meta?: { tag?: unknown[] } }; search: { mode: string } }>;
}

describe('FHIR type search', () => {
  let pool: Pool;
  let store: ResourceStore;
  let server: Awaited<ReturnType<typeof listen>>;
  let fhir: string;
  const resources = [...generatePopulation({ patients: 4, seed: 77 })];
  const groups: FhirResourceJson[] = [
    { resourceType: 'Group', id: 'diabetes-cohort', type: 'person', actual: true, name: 'Diabetes cohort 2024', identifier: [{ system: 'urn:cohorts', value: 'D-24' }] },
    { resourceType: 'Group', id: 'asthma-cohort', type: 'person', actual: true, name: 'Asthma cohort', identifier: [{ system: 'urn:cohorts', value: 'A-1' }] },
  ];

  beforeAll(async () => {
    pool = await migratedPool();
    store = new ResourceStore(pool, uniqueTenant('search'));
    await store.write([...resources, ...groups].map((resource) => ({ op: 'put' as const, resource })));
    server = await listen(createApp({ config: { baseUrl: 'http://fhir.example', fhirBasePath: '/fhir' }, log: createLogger('warn'), store }));
    fhir = `${server.url}/fhir`;
  });
  afterAll(async () => {
    await server.close();
    await pool.end();
  });

  const search = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${fhir}${path}`, { headers });
    return { res, body: (await res.json()) as SearchBundle };
  };

  it('finds Groups by identifier and by name, as a searchset Bundle with total and a self link', async () => {
    const { res, body } = await search('/Group?identifier=urn:cohorts|D-24');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
    expect(body.entry!.map((e) => e.fullUrl)).toEqual(['http://fhir.example/fhir/Group/diabetes-cohort']);
    expect(body.entry![0].search.mode).toBe('match');
    expect(body.link).toEqual([{ relation: 'self', url: 'http://fhir.example/fhir/Group?identifier=urn:cohorts|D-24' }]);

    const byName = await search('/Group?name=asthma');
    expect(byName.body.entry!.map((e) => e.resource.id)).toEqual(['asthma-cohort']);
    const both = await search('/Group?name=asthma,diabetes');
    expect(both.body.total).toBe(2);
  });

  it('pages with _count through next links at one snapshot: every match exactly once, later writes not mixed in', async () => {
    const expected = resources.filter((r) => r.resourceType === 'Observation').map((r) => r.id!).sort();
    const seen: string[] = [];
    let url: string | undefined = `${fhir}/Observation?_count=25`;
    let first = true;
    while (url) {
      const page = (await (await fetch(url.replace('http://fhir.example/fhir', fhir))).json()) as SearchBundle;
      expect(page.total).toBe(expected.length);
      expect(page.entry!.length).toBeLessThanOrEqual(25);
      seen.push(...page.entry!.map((e) => e.resource.id!));
      if (first) {
        await store.put({ resourceType: 'Observation', id: 'written-while-paging', status: 'final', code: { text: 'x' } });
        first = false;
      }
      url = page.link.find((l) => l.relation === 'next')?.url;
    }
    expect(seen.sort()).toEqual(expected);
    expect((await search('/Observation?_summary=count')).body.total).toBe(expected.length + 1);
  });

  it('answers _summary=count with the total only, and applies search parameters and _elements', async () => {
    const female = resources.filter((r) => r.resourceType === 'Patient' && r.gender === 'female');
    const { body } = await search('/Patient?gender=female&_summary=count');
    expect(body.total).toBe(female.length);
    expect(body.entry).toBeUndefined();

    const subset = await search('/Patient?gender=female&_elements=birthDate');
    expect(subset.body.entry!.map((e) => e.resource.id).sort()).toEqual(female.map((r) => r.id).sort());
    for (const { resource } of subset.body.entry!) {
      expect(Object.keys(resource).sort()).toEqual(['birthDate', 'id', 'meta', 'resourceType']);
      expect(resource.meta!.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));
    }
  });

  it.each([
    ['/Observation?nonsense=1', 400, 'nonsense'],
    ['/Observation?_sort=date', 400, '_sort'],
    ['/Observation?_count=many', 400, '_count'],
    ['/Observation?_count=100000', 400, '_count'],
    ['/Observation?date=yesterday', 400, 'date'],
    ['/Observation?_summary=true', 400, '_summary'],
    ['/Observation?status=%E0%A4%A', 400, undefined],
    ['/Patient?_id=%00', 400, '_id'],
    ['/Group?name=a%00b', 400, 'name'],
    ['/Observation?code=x%00|y', 400, 'code'],
    ['/Spaceship?name=x', 404, undefined],
  ])('answers %s with %i and an OperationOutcome', async (path, status, expression) => {
    const res = await fetch(`${fhir}${path}`);
    expect(res.status).toBe(status);
    const outcome = (await res.json()) as { resourceType: string; issue: Array<{ expression?: string[] }> };
    expect(outcome.resourceType).toBe('OperationOutcome');
    if (expression) expect(outcome.issue[0].expression).toEqual([expression]);
  });

  it('drops unknown parameters under Prefer: handling=lenient', async () => {
    const { res, body } = await search('/Group?nonsense=1&name=asthma', { Prefer: 'handling=lenient' });
    expect(res.status).toBe(200);
    expect(body.entry!.map((e) => e.resource.id)).toEqual(['asthma-cohort']);
  });
});
