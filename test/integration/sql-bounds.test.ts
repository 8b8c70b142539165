/**
 * `$sql-run` bounded on every axis, over HTTP as an attacker meets it: the row and byte caps
 * stop a result while the engine makes it (not after the whole result is built), one time limit
 * holds for the whole request, spill files live in a directory of their own that goes with the
 * query and no host path is readable, a query whose client leaves is stopped, and at most
 * SQL_MAX_CONCURRENT queries run at once (per tenant too), with 429 + Retry-After beyond.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import { generatePopulation } from '../../src/generate/population';
import { startExportStack, type ExportStack } from '../support/export-stack';
import { waitFor } from '../support/wait';

const SYSTEM = 'http://hl7.org/fhir/uv/sql-on-fhir/CodeSystem/LibraryTypesCodes';
const observationView = {
  resourceType: 'ViewDefinition',
  url: 'https://bulkflow.example/views/bounds-observations',
  name: 'observations',
  status: 'active',
  resource: 'Observation',
  select: [{ column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'code', path: 'code.coding.first().code' }] }],
};
const TIME_LIMIT_MS = 4_000;
const BYTE_CAP = 16 * 1024 * 1024;
/** Runs until its time limit, in constant memory. */
const ENDLESS = 'SELECT count(*) AS n FROM range(1000000000000) t(i) WHERE i % 7 = 9';

type Outcome = { resourceType: string; issue: Array<{ code: string; diagnostics: string }> };

describe('$sql-run bounded on every axis', () => {
  let stack: ExportStack;
  let spillRoot: string;
  let observations: number;

  /** A SQLQuery over `obs` if the SQL names it. */
  const subject = (sql: string) => ({
    resourceType: 'Library',
    name: 'bounds',
    status: 'active',
    type: { coding: [{ system: SYSTEM, code: 'sql-query' }] },
    content: [{ contentType: 'application/sql', data: Buffer.from(sql).toString('base64') }],
    relatedArtifact: /\bobs\b/.test(sql) ? [{ type: 'depends-on', resource: observationView.url, label: 'obs' }] : [],
  });
  const run = (sql: string, options: { tenant?: string; signal?: AbortSignal; format?: string } = {}) =>
    fetch(`${stack.fhir}/$sql-run`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json', ...(options.tenant ? { 'X-Tenant': options.tenant } : {}) },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'subjectResource', resource: subject(sql) }, ...(options.format ? [{ name: '_format', valueCode: options.format }] : [])] }),
      signal: options.signal,
    });
  const timed = async (sql: string, options?: Parameters<typeof run>[1]) => {
    const started = Date.now();
    const res = await run(sql, options);
    const body = await res.text();
    return { status: res.status, body, outcome: (res.headers.get('content-type') ?? '').includes('json') && body.startsWith('{') ? (JSON.parse(body) as Outcome) : undefined, ms: Date.now() - started, retryAfter: res.headers.get('retry-after') };
  };

  beforeAll(async () => {
    spillRoot = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-sql-spill-'));
    stack = await startExportStack({
      tenantHeader: 'X-Tenant',
      sql: { run: { memoryLimit: '64MB', timeoutMs: TIME_LIMIT_MS, maxResultBytes: BYTE_CAP, spillDirectory: spillRoot, spillLimitMb: 1024 }, admission: { perProcess: 2, perTenant: 1 } },
    });
    const population = [...generatePopulation({ patients: 5, seed: 77 })];
    observations = population.filter((r) => r.resourceType === 'Observation').length;
    await stack.store.write([...population, observationView].map((resource) => ({ op: 'put' as const, resource: resource as FhirResourceJson })));
  });
  afterAll(() => stack.close());

  it('refuses a result past the row cap while the engine makes it: an endless range and a 5-way self-join answer 413 within seconds, not at the time limit', async () => {
    expect(observations ** 5).toBeGreaterThan(1_000_000); // the default row cap
    for (const sql of ['SELECT * FROM range(100000000000)', 'SELECT 1 AS one FROM obs a, obs b, obs c, obs d, obs e']) {
      const answer = await timed(sql);
      expect(answer.status).toBe(413);
      expect(answer.outcome!.issue[0]).toMatchObject({ code: 'too-costly', diagnostics: expect.stringContaining('SQL_RUN_MAX_ROWS') });
      expect(answer.ms).toBeLessThan(TIME_LIMIT_MS);
    }
  });

  it('refuses a result past its bytes before encoding it: wide strings and a list blow-up answer 413 naming the cap; under it is served', async () => {
    for (const sql of ["SELECT repeat('x', 5000000) AS s FROM range(4)", 'SELECT [i, i, i, i, i, i, i, i] AS l FROM range(300000) t(i)']) {
      const answer = await timed(sql);
      expect(answer.status).toBe(413);
      expect(answer.outcome!.issue[0]).toMatchObject({ code: 'too-costly', diagnostics: expect.stringContaining('SQL_RUN_MAX_RESULT_MB') });
      expect(answer.body.length).toBeLessThan(10_000);
    }
    const under = await timed("SELECT repeat('x', 3000000) AS s FROM range(4)");
    expect(under.status).toBe(200);
    expect((JSON.parse(under.body) as Array<{ s: string }>).map((r) => r.s.length)).toEqual([3000000, 3000000, 3000000, 3000000]);
  });

  it('holds one time limit for the whole request, whatever the query spends it on', async () => {
    for (const [sql, format] of [
      [ENDLESS, 'json'],
      ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) AS n FROM r', 'json'],
      ['SELECT i, i::VARCHAR AS s, [i, i] AS l FROM range(60000) t(i)', 'fhir'],
      ['SELECT list(i) AS l FROM range(100000000) t(i)', 'json'],
    ] as const) {
      const answer = await timed(sql, { format });
      expect([200, 413, 422, 503]).toContain(answer.status);
      expect(answer.ms).toBeLessThan(TIME_LIMIT_MS + 2_000);
      if (sql === ENDLESS) expect(answer.outcome!.issue[0].code).toBe('timeout');
    }
  });

  it('spills to a directory of its own under the spill root, removed after the query, and names no host path', async () => {
    // A sort of about 160 MB under a 64 MB memory limit: it needs the disk.
    const sorted = await timed("SELECT count(*) AS n, max(s) AS top FROM (SELECT i::VARCHAR || repeat('x', 100) AS s FROM range(1500000) t(i) ORDER BY s DESC LIMIT 1400000)");
    expect(sorted.status).toBe(200);
    expect(JSON.parse(sorted.body)).toEqual([{ n: 1400000, top: `9${'x'.repeat(100)}` }]); // 'x' sorts after every digit
    expect(readdirSync(spillRoot)).toEqual([]);
    for (const sql of ["SELECT current_setting('temp_directory') AS d", 'SELECT name, value FROM duckdb_settings()', 'SELECT * FROM pg_settings', "SELECT * FROM read_text('" + spillRoot + "/x')"]) {
      const answer = await timed(sql);
      expect(answer.status).toBe(400);
      expect(answer.outcome!.issue[0].code).toBe('invalid');
      expect(answer.body).not.toContain(spillRoot);
      expect(answer.body).not.toContain(os.homedir());
    }
  });

  it('runs at most SQL_MAX_CONCURRENT queries at once and SQL_MAX_CONCURRENT_PER_TENANT per tenant, 429 with Retry-After beyond; a query whose client leaves is stopped and frees its place', async () => {
    const leaving = new AbortController();
    const first = run(ENDLESS, { tenant: 'sql-a', signal: leaving.signal }).catch((err: unknown) => err);
    const second = timed(ENDLESS, { tenant: 'sql-b' });
    // Both running: the same tenant again, and a third tenant, are turned away at once.
    await waitFor(async () => (await timed('SELECT 1 AS one', { tenant: 'sql-c' })).status === 429, 2_000, 'both queries running');
    const sameTenant = await timed('SELECT 1 AS one', { tenant: 'sql-b' });
    expect(sameTenant.status).toBe(429);
    expect(sameTenant.retryAfter).toMatch(/^\d+$/);
    expect(sameTenant.outcome!.issue[0]).toMatchObject({ code: 'throttled', diagnostics: expect.stringContaining('SQL_MAX_CONCURRENT') });
    const thirdTenant = await timed('SELECT 1 AS one', { tenant: 'sql-c' });
    expect(thirdTenant.status).toBe(429);
    expect(thirdTenant.outcome!.issue[0].diagnostics).toContain('(SQL_MAX_CONCURRENT)');
    // The first client leaves: its query stops long before its time limit, and its place is free.
    const left = Date.now();
    leaving.abort();
    await first;
    await waitFor(async () => (await timed('SELECT 1 AS one', { tenant: 'sql-c' })).status === 200, 2_000, 'a free place');
    expect(Date.now() - left).toBeLessThan(TIME_LIMIT_MS / 2);
    expect((await second).status).toBe(503); // the other ran to its time limit, undisturbed
    expect((await timed('SELECT 1 AS one', { tenant: 'sql-b' })).body).toBe('[{"one":1}]');
  });
});
