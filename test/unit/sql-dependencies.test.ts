import { OperationOutcomeError } from '../../src/fhir/outcome-error';
import { planDependencies } from '../../src/sql/dependencies';
import type { SqlLibrary } from '../../src/sql/sql-library';

const SYSTEM = 'http://hl7.org/fhir/uv/sql-on-fhir/CodeSystem/LibraryTypesCodes';
const view = (url: string) => ({ resourceType: 'ViewDefinition', url, resource: 'Patient', select: [{ column: [{ name: 'id', path: 'id' }] }] });
const sqlView = (url: string, sql: string, dependsOn: Array<[string, string]>, code = 'sql-view') => ({
  resourceType: 'Library',
  url,
  type: { coding: [{ system: SYSTEM, code }] },
  content: [{ contentType: 'application/sql', data: Buffer.from(sql).toString('base64') }],
  relatedArtifact: dependsOn.map(([label, resource]) => ({ type: 'depends-on', label, resource })),
});
const query = (dependsOn: Array<[string, string]>): SqlLibrary => ({ kind: 'sql-query', url: 'urn:query', sql: 'SELECT 1', dependencies: dependsOn.map(([label, url]) => ({ label, url })), parameters: [] });

const store = (...resources: Array<Record<string, unknown>>) => async (d: { url: string }) => resources.find((r) => r.url === d.url);

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof OperationOutcomeError)) throw new Error(`expected a refusal, got ${String(err)}`);
  return { code: err.code, message: err.message };
}

describe('planDependencies', () => {
  it('orders SQLViews after the tables they read, and runs each ViewDefinition once per label', async () => {
    const resolve = store(
      view('urn:v:patients'),
      view('urn:v:obs'),
      sqlView('urn:sv:heights', 'SELECT * FROM obs', [['obs', 'urn:v:obs']]),
      sqlView('urn:sv:tall', 'SELECT * FROM heights JOIN patients USING (id)', [['heights', 'urn:sv:heights'], ['patients', 'urn:v:patients']]),
    );
    const plan = await planDependencies(query([['tall', 'urn:sv:tall'], ['obs', 'urn:v:obs']]), resolve);
    expect(plan.views.map((v) => v.label)).toEqual(['obs', 'patients']);
    expect(plan.sqlViews.map((v) => [v.label, v.sql])).toEqual([
      ['heights', 'SELECT * FROM obs'],
      ['tall', 'SELECT * FROM heights JOIN patients USING (id)'],
    ]);
  });

  it('refuses a cycle, naming it', async () => {
    const resolve = store(sqlView('urn:sv:a', 'SELECT * FROM b', [['b', 'urn:sv:b']]), sqlView('urn:sv:b', 'SELECT * FROM a', [['a', 'urn:sv:a']]));
    const refused = await refusal(planDependencies(query([['a', 'urn:sv:a']]), resolve));
    expect(refused.code).toBe('processing');
    expect(refused.message).toContain('urn:sv:a -> urn:sv:b -> urn:sv:a');
  });

  it('refuses a graph deeper than the limit', async () => {
    const chain = Array.from({ length: 5 }, (_, i) => sqlView(`urn:sv:${i}`, 'SELECT 1', i < 4 ? [[`t${i + 1}`, `urn:sv:${i + 1}`]] : []));
    expect((await refusal(planDependencies(query([['t0', 'urn:sv:0']]), store(...chain), 3))).code).toBe('processing');
    await expect(planDependencies(query([['t0', 'urn:sv:0']]), store(...chain), 8)).resolves.toBeDefined();
  });

  it('refuses one label for two tables, a SQLQuery as a table, and a table found nowhere', async () => {
    const resolve = store(view('urn:v:a'), view('urn:v:b'), sqlView('urn:sv:x', 'SELECT 1', [['t', 'urn:v:b']]), sqlView('urn:q', 'SELECT 1', [], 'sql-query'));
    expect((await refusal(planDependencies(query([['t', 'urn:v:a'], ['x', 'urn:sv:x']]), resolve))).message).toContain('names both');
    expect((await refusal(planDependencies(query([['q', 'urn:q']]), resolve))).message).toContain('a SQLQuery');
    expect((await refusal(planDependencies(query([['n', 'urn:nowhere']]), resolve))).code).toBe('not-found');
  });
});
