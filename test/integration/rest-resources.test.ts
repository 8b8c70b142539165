import type { Pool } from 'pg';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import { ResourceStore } from '../../src/store/resource-store';
import { migratedPool, uniqueTenant } from '../support/database';
import { listen } from '../support/http';

describe('FHIR REST reads and writes', () => {
  let pool: Pool;
  let store: ResourceStore;
  let server: Awaited<ReturnType<typeof listen>>;
  let fhir: string;

  beforeAll(async () => {
    pool = await migratedPool();
    store = new ResourceStore(pool, uniqueTenant('rest'));
    server = await listen(createApp({ config: { baseUrl: 'http://fhir.example', fhirBasePath: '/fhir' }, log: createLogger('warn'), store }));
    fhir = `${server.url}/fhir`;
  });
  afterAll(async () => {
    await server.close();
    await pool.end();
  });

  const send = (method: string, path: string, body?: unknown, type = 'application/fhir+json') =>
    fetch(`${fhir}${path}`, { method, headers: body === undefined ? {} : { 'Content-Type': type }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });

  it('creates with PUT (201, Location, ETag), updates (200, new version), and a no-op keeps the version', async () => {
    const created = await send('PUT', '/Patient/r1', { resourceType: 'Patient', id: 'r1', active: true });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('http://fhir.example/fhir/Patient/r1/_history/1');
    expect(created.headers.get('etag')).toBe('W/"1"');
    expect(created.headers.get('last-modified')).toBeTruthy();
    expect(((await created.json()) as { meta: { versionId: string } }).meta.versionId).toBe('1');

    const updated = await send('PUT', '/Patient/r1', { resourceType: 'Patient', id: 'r1', active: false });
    expect(updated.status).toBe(200);
    expect(updated.headers.get('etag')).toBe('W/"2"');
    const same = await send('PUT', '/Patient/r1', { resourceType: 'Patient', id: 'r1', active: false });
    expect(same.headers.get('etag')).toBe('W/"2"');

    const read = await send('GET', '/Patient/r1');
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe('W/"2"');
    expect(((await read.json()) as { active: boolean }).active).toBe(false);
  });

  it('creates with POST under a server-assigned id', async () => {
    const res = await send('POST', '/Observation', { resourceType: 'Observation', id: 'client-chosen', status: 'final' });
    expect(res.status).toBe(201);
    const location = res.headers.get('location')!;
    const id = location.split('/')[5];
    expect(id).not.toBe('client-chosen');
    expect((await send('GET', `/Observation/${id}`)).status).toBe(200);
  });

  it('deletes (204), then reads answer 410 Gone', async () => {
    await send('PUT', '/Condition/c9', { resourceType: 'Condition', id: 'c9' });
    expect((await send('DELETE', '/Condition/c9')).status).toBe(204);
    const gone = await send('GET', '/Condition/c9');
    expect(gone.status).toBe(410);
    expect(((await gone.json()) as { issue: Array<{ code: string }> }).issue[0].code).toBe('deleted');
  });

  it.each([
    ['an unknown type', 'GET', '/Spaceship/1', undefined, 404],
    ['an unknown resource', 'GET', '/Patient/nope', undefined, 404],
    ['a bad id', 'GET', '/Patient/bad%20id', undefined, 400],
    ['a body of another type', 'PUT', '/Patient/x', { resourceType: 'Observation' }, 400],
    ['an id that differs from the URL', 'PUT', '/Patient/x', { resourceType: 'Patient', id: 'y' }, 400],
    ['a body without resourceType', 'PUT', '/Patient/x', { id: 'x' }, 400],
    ['invalid JSON', 'PUT', '/Patient/x', '{nope', 400],
    ['a non-JSON content type', 'POST', '/Patient', 'resourceType=Patient', 415],
    ['a Bundle that is neither transaction nor batch', 'POST', '', { resourceType: 'Bundle', type: 'collection' }, 400],
  ])('answers %s with %s and an OperationOutcome', async (_what, method, path, body, status) => {
    const res = await send(method, path, body, body === 'resourceType=Patient' ? 'application/x-www-form-urlencoded' : 'application/fhir+json');
    expect(res.status).toBe(status);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  it('runs a transaction: urn:uuid references resolved, all entries committed together', async () => {
    const res = await send('POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001', resource: { resourceType: 'Patient', active: true }, request: { method: 'POST', url: 'Patient' } },
        {
          fullUrl: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000002',
          resource: { resourceType: 'Encounter', status: 'finished', subject: { reference: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001' } },
          request: { method: 'PUT', url: 'Encounter/tx-enc' },
        },
      ],
    });
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as { type: string; entry: Array<{ response: { status: string; location: string } }> };
    expect(bundle.type).toBe('transaction-response');
    expect(bundle.entry.map((e) => e.response.status)).toEqual(['201 Created', '201 Created']);
    const patientId = bundle.entry[0].response.location.split('/')[5];
    const encounter = (await (await send('GET', '/Encounter/tx-enc')).json()) as { subject: { reference: string } };
    expect(encounter.subject.reference).toBe(`Patient/${patientId}`);
  });

  it('rolls a transaction back when one entry fails', async () => {
    const res = await send('POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', id: 'tx-rollback' }, request: { method: 'PUT', url: 'Patient/tx-rollback' } },
        { resource: { resourceType: 'Patient', id: 'bad id!' }, request: { method: 'PUT', url: 'Patient/bad id!' } },
      ],
    });
    expect(res.status).toBe(400);
    expect((await send('GET', '/Patient/tx-rollback')).status).toBe(404);
  });

  it('runs a batch entry by entry, reporting failures per entry', async () => {
    const res = await send('POST', '', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', id: 'b1' }, request: { method: 'PUT', url: 'Patient/b1' } },
        { resource: { resourceType: 'Spaceship' }, request: { method: 'POST', url: 'Spaceship' } },
        { request: { method: 'DELETE', url: 'Patient/b1' } },
      ],
    });
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as { type: string; entry: Array<{ response: { status: string; outcome?: { resourceType: string } } }> };
    expect(bundle.type).toBe('batch-response');
    expect(bundle.entry.map((e) => e.response.status)).toEqual(['201 Created', '404', '204 No Content']);
    expect(bundle.entry[1].response.outcome?.resourceType).toBe('OperationOutcome');
  });
});
