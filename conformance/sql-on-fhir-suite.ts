/**
 * The official SQL on FHIR ViewDefinition test suite, run over HTTP against `$sql-run`: each
 * case POSTs its view (`subjectResource`) and its fixtures (`resource` parts) and compares the
 * answer strictly. Rows are a multiset, each with exactly the expected keys and values (a null
 * column present as null; collections as ordered arrays); `expectColumns` is checked against
 * the column order of a CSV header (JSON objects keep insertion order too, but CSV says it
 * plainly); `expectError` cases must answer 4xx with an OperationOutcome. The result is the
 * suite's `test_report.json` shape, plus counts per tag.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface SuiteCase {
  title: string;
  tags?: string[];
  view: Record<string, unknown>;
  expect?: Record<string, unknown>[];
  expectError?: boolean;
  expectCount?: number;
  expectColumns?: string[];
}

interface SuiteFile {
  title: string;
  resources: Record<string, unknown>[];
  tests: SuiteCase[];
}

export interface CaseResult {
  file: string;
  name: string;
  tags: string[];
  passed: boolean;
  /** Why it failed. */
  reason?: string;
}

export interface SuiteReport {
  results: CaseResult[];
  /** The suite's report schema: `{ "<file>.json": { tests: [{ name, result: { passed } }] } }`. */
  testReport: Record<string, { tests: { name: string; result: { passed: boolean } }[] }>;
  /** Passed and total per tag. */
  byTag: Record<string, { passed: number; total: number }>;
}

/** A value's canonical JSON text: object keys sorted, arrays in order. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));

/** The first CSV line's fields (the header), quotes removed. */
function csvHeader(text: string): string[] {
  const line = text.split(/\r?\n/)[0];
  return line === '' ? [] : line.split(',').map((f) => f.replace(/^"|"$/g, '').replace(/""/g, '"'));
}

function requestBody(view: Record<string, unknown>, resources: Record<string, unknown>[], format?: string) {
  return JSON.stringify({
    resourceType: 'Parameters',
    parameter: [
      { name: 'subjectResource', resource: { resourceType: 'ViewDefinition', ...view } },
      ...(format ? [{ name: '_format', valueCode: format }] : []),
      ...resources.map((resource) => ({ name: 'resource', resource })),
    ],
  });
}

async function runCase(runUrl: string, suite: SuiteFile, test: SuiteCase, headers: Record<string, string>): Promise<string | undefined> {
  const post = (format?: string) => fetch(runUrl, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json', ...headers }, body: requestBody(test.view, suite.resources, format) });
  const response = await post();
  const text = await response.text();
  if (test.expectError) {
    if (response.status < 400 || response.status >= 500) return `expected a 4xx error, got ${response.status}: ${text.slice(0, 200)}`;
    const body = JSON.parse(text) as { resourceType?: string; issue?: unknown[] };
    return body.resourceType === 'OperationOutcome' && Array.isArray(body.issue) && body.issue.length > 0 ? undefined : 'the error is not an OperationOutcome';
  }
  if (response.status !== 200) return `expected 200, got ${response.status}: ${text.slice(0, 300)}`;
  const rows = JSON.parse(text) as Record<string, unknown>[];
  if (!Array.isArray(rows)) return 'the answer is not a JSON array';
  if (test.expectCount !== undefined) return rows.length === test.expectCount ? undefined : `expected ${test.expectCount} rows, got ${rows.length}`;
  const got = rows.map(canonical).sort();
  const want = (test.expect ?? []).map(canonical).sort();
  if (JSON.stringify(got) !== JSON.stringify(want)) return `rows differ:\n  got  ${JSON.stringify(rows).slice(0, 400)}\n  want ${JSON.stringify(test.expect).slice(0, 400)}`;
  if (test.expectColumns) {
    const csv = await post('csv');
    const header = csvHeader(await csv.text());
    if (JSON.stringify(header) !== JSON.stringify(test.expectColumns)) return `columns ${JSON.stringify(header)}, expected ${JSON.stringify(test.expectColumns)}`;
  }
  return undefined;
}

/** Runs every case of the suite in `suiteDir` (its `tests/` folder) against `fhirBaseUrl`. */
export async function runSqlOnFhirSuite(suiteDir: string, fhirBaseUrl: string, headers: Record<string, string> = {}): Promise<SuiteReport> {
  const testsDir = path.join(suiteDir, 'tests');
  const results: CaseResult[] = [];
  for (const file of readdirSync(testsDir).filter((f) => f.endsWith('.json')).sort()) {
    const suite = JSON.parse(readFileSync(path.join(testsDir, file), 'utf8')) as SuiteFile;
    for (const test of suite.tests) {
      let reason: string | undefined;
      try {
        reason = await runCase(`${fhirBaseUrl}/$sql-run`, suite, test, headers);
      } catch (err) {
        reason = `request failed: ${(err as Error).message}`;
      }
      results.push({ file, name: test.title, tags: test.tags ?? [], passed: reason === undefined, reason });
    }
  }
  const testReport: SuiteReport['testReport'] = {};
  const byTag: SuiteReport['byTag'] = {};
  for (const r of results) {
    (testReport[r.file] ??= { tests: [] }).tests.push({ name: r.name, result: { passed: r.passed } });
    for (const tag of r.tags.length > 0 ? r.tags : ['untagged']) {
      const counts = (byTag[tag] ??= { passed: 0, total: 0 });
      counts.total++;
      if (r.passed) counts.passed++;
    }
  }
  return { results, testReport, byTag };
}
