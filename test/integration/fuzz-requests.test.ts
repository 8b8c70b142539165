/**
 * Bad input, generated: fast-check makes kick-off URLs, headers, Parameters bodies, status and
 * file paths, ViewDefinition runs and REST bodies (a few thousand requests a run) against the
 * real app on the real store and Temporal. Whatever a client sends, no answer is a 5xx, and every
 * 4xx is an OperationOutcome; and each property also generates requests that are right, which
 * must succeed (a server that refused everything would pass the rest). No worker polls the stack's task queue: accepted exports wait,
 * and the tenant cap refuses the rest with 429.
 */
import fc from 'fast-check';
import { generatePopulation } from '../../src/generate/population';
import { startExportStack, type ExportStack } from '../support/export-stack';

jest.setTimeout(300_000);

const RUNS = Number(process.env.FUZZ_RUNS ?? 750); // four properties: 3,000 requests a run

/** Strings a client might send: plain, FHIR-ish, unicode, percent-escapes, control characters, long. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', ' ', 'Patient', 'Observation,Patient', 'Patient/1', '2020-01-01', '2020-13-45T99:00:00Z', 'application/fhir+ndjson', 'ndjson', '%', '%zz', '%00', '..', '../..', '\u0000', 'a'.repeat(5000), '[]', '{}', 'true', '-1', '1e309', 'Patient?name=x'),
);
const paramName = fc.oneof(
  fc.constantFrom('_type', '_since', '_until', '_outputFormat', '_typeFilter', '_elements', 'patient', 'includeAssociatedData', 'organizeOutputBy', 'allowPartialManifests', '_format', '_count', '_id', 'subjectReference', 'subjectCanonical', 'header', '_limit', 'name', 'subject'),
  fc.string({ maxLength: 12 }),
);
const query = fc.array(fc.tuple(paramName, text), { maxLength: 6 }).map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'));
const rawQuery = fc.oneof(query, fc.string({ maxLength: 60 }).map((s) => s.replace(/[#\s]/g, '')));
const headers = fc.record(
  {
    accept: fc.oneof(fc.constantFrom('application/fhir+json', 'application/json', 'text/html', '*/*', ''), text),
    prefer: fc.oneof(fc.constantFrom('respond-async', 'respond-async, handling=lenient', 'handling=strict', ''), text),
    'content-type': fc.oneof(fc.constantFrom('application/fhir+json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded'), text),
    'x-forwarded-host': text,
    'x-forwarded-proto': text,
    authorization: fc.oneof(fc.constant('Bearer x'), text),
  },
  { requiredKeys: [] },
).map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => /^[\t\x20-\x7e\x80-\xff]*$/.test(v)))); // what fetch can send
const value = fc.oneof(
  fc.record({ name: paramName, valueString: text }),
  fc.record({ name: paramName, valueCode: text }),
  fc.record({ name: paramName, valueBoolean: fc.boolean() }),
  fc.record({ name: paramName, valueInteger: fc.integer() }),
  fc.record({ name: paramName, valueReference: fc.record({ reference: text }) }),
  fc.record({ name: paramName, resource: fc.jsonValue({ maxDepth: 3 }) }),
  fc.record({ name: paramName, part: fc.array(fc.record({ name: paramName, valueString: text }), { maxLength: 3 }) }),
  fc.jsonValue({ maxDepth: 2 }),
);
const parameters = fc.oneof(
  fc.record({ resourceType: fc.constant('Parameters'), parameter: fc.array(value, { maxLength: 5 }) }).map((p) => JSON.stringify(p)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.constantFrom('', '{', '{"resourceType":"Parameters","parameter":{}}', '[]', 'null'),
);
/** Requests that are right, mixed into the generated ones. */
const validHeaders = fc.constant({ accept: 'application/fhir+json', prefer: 'respond-async', 'content-type': 'application/fhir+json' });
const VIEW = { resourceType: 'ViewDefinition', resource: 'Patient', select: [{ column: [{ name: 'id', path: 'id' }] }] };
const validRun = fc.constant(JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'subjectResource', resource: VIEW }, { name: 'resource', resource: { resourceType: 'Patient', id: 'p1' } }] }));
const idish = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', '..', '%2e%2e', 'a/b', 'x'.repeat(300)));

describe('generated bad requests', () => {
  let stack: ExportStack;
  const problems: string[] = [];
  let succeeded = 0;

  beforeAll(async () => {
    stack = await startExportStack({ maxRunningExports: 5 });
    await stack.store.write([...generatePopulation({ patients: 2, seed: 3 })].map((resource) => ({ op: 'put' as const, resource })));
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  /** Sends one request; records it when it answered 5xx or a 4xx that is not an OperationOutcome. */
  const check = async (method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}) => {
    let res: Response;
    try {
      res = await fetch(`${stack.url}${path}`, { method, headers: init.headers, body: method === 'GET' || method === 'HEAD' ? undefined : init.body });
    } catch (err) {
      // fetch refuses some URLs itself (never sent): not an answer of bulkflow's.
      if (err instanceof TypeError && !/fetch failed/.test(err.message)) return true;
      problems.push(`${method} ${path}: ${String(err)}`);
      return false;
    }
    const body = await res.text();
    if (res.status < 300) succeeded++;
    if (res.status >= 500) {
      problems.push(`${method} ${path} ${JSON.stringify(init)} answered ${res.status}: ${body.slice(0, 300)}`);
      return false;
    }
    if (res.status >= 400 && method !== 'HEAD') {
      let outcome: { resourceType?: unknown } | undefined;
      try {
        outcome = JSON.parse(body) as { resourceType?: unknown };
      } catch {
        // not JSON
      }
      if (outcome?.resourceType !== 'OperationOutcome') {
        problems.push(`${method} ${path} answered ${res.status} without an OperationOutcome: ${body.slice(0, 200)}`);
        return false;
      }
    }
    return true;
  };
  const property = async (arbitrary: fc.Arbitrary<[string, string, { headers?: Record<string, string>; body?: string }]>) => {
    await fc.assert(fc.asyncProperty(arbitrary, ([method, path, init]) => check(method, path, init)), { numRuns: RUNS, endOnFailure: true });
  };
  afterEach(() => {
    expect(problems.splice(0)).toEqual([]);
    expect(succeeded).toBeGreaterThan(0); // the right requests among them were served
    succeeded = 0;
  });

  it('answers every generated kick-off URL and header set with a 2xx/4xx, 4xx as OperationOutcome', async () => {
    const base = fc.constantFrom('/fhir/$export', '/fhir/Patient/$export', '/fhir/Group/none/$export', '/fhir/Group/$export', '/fhir/$sql-export', '/fhir/$sql-run');
    const anyHeaders = fc.oneof({ arbitrary: headers, weight: 4 }, { arbitrary: validHeaders, weight: 1 });
    await property(fc.tuple(fc.constantFrom('GET', 'POST'), fc.tuple(base, fc.oneof(rawQuery, fc.constant('_type=Patient'))).map(([b, q]) => `${b}?${q}`), anyHeaders.map((h) => ({ headers: h }))));
  });

  it('answers every generated Parameters body to the POST operations', async () => {
    const target = fc.constantFrom('/fhir/$export', '/fhir/Patient/$export', '/fhir/$sql-export', '/fhir/$sql-run', '/fhir/ViewDefinition/$viewdefinition-run', '/fhir/ViewDefinition/$viewdefinition-export');
    await property(
      fc.tuple(
        fc.constant('POST'),
        target,
        fc.tuple(fc.oneof({ arbitrary: parameters, weight: 4 }, { arbitrary: validRun, weight: 1 }), fc.constantFrom('application/fhir+json', 'application/json', 'text/plain')).map(([body, type]) => ({ body, headers: { 'content-type': type, prefer: 'respond-async', accept: 'application/fhir+json' } })),
      ),
    );
  });

  it('answers every generated status, result, file and cancel path', async () => {
    const path = fc.oneof(
      idish.map((id) => `/fhir/bulkstatus/${encodeURIComponent(id)}`),
      fc.tuple(idish, idish).map(([a, b]) => `/fhir/bulkfiles/${encodeURIComponent(a)}/${encodeURIComponent(b)}`),
      idish.map((id) => `/fhir/sql-export/${encodeURIComponent(id)}`),
      idish.map((id) => `/fhir/sql-export/${encodeURIComponent(id)}/result`),
      fc.tuple(idish, idish).map(([a, b]) => `/fhir/sql-export/${encodeURIComponent(a)}/files/${encodeURIComponent(b)}`),
      fc.string({ maxLength: 40 }).map((s) => `/fhir/${s.replace(/[#?\s]/g, '')}`),
      fc.constantFrom('/fhir/metadata', '/healthz', '/fhir/Patient'),
    );
    await property(fc.tuple(fc.constantFrom('GET', 'DELETE', 'HEAD', 'PUT', 'PATCH'), path, fc.constant({})));
  });

  it('answers every generated REST write and read', async () => {
    const type = fc.constantFrom('Patient', 'Observation', 'Group', 'ViewDefinition', 'Nope', 'patient', '');
    const resource = fc.oneof(
      fc.record({ resourceType: type, id: fc.option(idish, { nil: undefined }), meta: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }), extra: fc.jsonValue({ maxDepth: 3 }) }).map((r) => JSON.stringify(r)),
      parameters,
    );
    await property(
      fc.oneof(
        fc.tuple(fc.constant('POST'), type.map((t) => `/fhir/${t}`), resource.map((body) => ({ body, headers: { 'content-type': 'application/fhir+json' } }))),
        fc.tuple(fc.constant('PUT'), fc.tuple(type, idish).map(([t, id]) => `/fhir/${t}/${encodeURIComponent(id)}`), resource.map((body) => ({ body, headers: { 'content-type': 'application/fhir+json' } }))),
        fc.tuple(fc.constantFrom('GET', 'DELETE'), fc.tuple(type, idish, rawQuery).map(([t, id, q]) => `/fhir/${t}/${encodeURIComponent(id)}?${q}`), fc.constant({})),
        fc.tuple(fc.constant('GET'), fc.tuple(type, rawQuery).map(([t, q]) => `/fhir/${t}?${q}`), fc.constant({})),
      ),
    );
  });
});
