import { createApp } from '../../src/http/app';
import { access, newRouter } from '../../src/http/access';
import { createLogger } from '../../src/log';
import { listen } from '../support/http';
import { OperationOutcomeError } from '../../src/fhir/outcome-error';

describe('HTTP error handling', () => {
  const logLines: string[] = [];
  const failing = newRouter();
  failing.get('/boom', access.public, () => {
    throw new Error('database password is hunter2');
  });
  failing.get('/refused', access.public, () => {
    throw OperationOutcomeError.invalid('The _since parameter is not a FHIR instant', '_since');
  });
  failing.post('/echo', access.public, (ctx) => {
    ctx.body = { ok: true };
  });
  const app = createApp({
    config: { baseUrl: 'http://localhost:8080', fhirBasePath: '/fhir' },
    log: createLogger('info', {}, (line) => logLines.push(line)),
    fhirRouters: [failing],
  });
  let server: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    server = await listen(app);
  });
  afterAll(() => server.close());

  it('turns an unexpected error into a 500 OperationOutcome without leaking its message', async () => {
    const res = await fetch(`${server.url}/fhir/boom`);
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const body = (await res.json()) as any;
    expect(body.resourceType).toBe('OperationOutcome');
    expect(body.issue[0]).toMatchObject({ severity: 'error', code: 'exception' });
    expect(JSON.stringify(body)).not.toContain('hunter2');
    const requestId = res.headers.get('x-request-id');
    expect(body.issue[0].diagnostics).toContain(requestId);
    expect(logLines.some((line) => line.includes('hunter2') && line.includes(requestId!))).toBe(true);
  });

  it('answers a client error with its status and the parameter it names', async () => {
    const res = await fetch(`${server.url}/fhir/refused`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as any;
    expect(body.issue[0]).toMatchObject({ code: 'invalid', expression: ['_since'] });
    expect(body.issue[0].diagnostics).toMatch(/_since/);
  });

  it('answers an unknown route with a 404 OperationOutcome', async () => {
    for (const path of ['/fhir/NoSuchThing', '/elsewhere']) {
      const res = await fetch(server.url + path);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
      const body = (await res.json()) as any;
      expect(body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'not-found' }] });
    }
  });

  it('answers a wrong method with a 405 OperationOutcome and an Allow header', async () => {
    const res = await fetch(`${server.url}/fhir/metadata`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toContain('GET');
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'not-supported' }] });
  });

  it('keeps a sane X-Request-Id from the caller and replaces an unsafe one', async () => {
    const kept = await fetch(`${server.url}/fhir/metadata`, { headers: { 'X-Request-Id': 'abc-123' } });
    expect(kept.headers.get('x-request-id')).toBe('abc-123');
    const replaced = await fetch(`${server.url}/fhir/metadata`, { headers: { 'X-Request-Id': 'a b<script>' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('serves an R4 CapabilityStatement at /fhir/metadata', async () => {
    const res = await fetch(`${server.url}/fhir/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({
      resourceType: 'CapabilityStatement',
      status: 'active',
      kind: 'instance',
      fhirVersion: '4.0.1',
      format: expect.arrayContaining(['json', 'application/fhir+json']),
      implementation: { url: 'http://localhost:8080/fhir' },
      rest: [{ mode: 'server' }],
    });
  });
});
