/** With the workflow service unreachable, the API answers 503 with a transient OperationOutcome and Retry-After, never 500. */
import { Client, Connection } from '@temporalio/client';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import { LocalOutputStore } from '../../src/output/local-output-store';
import { findFreePort } from '../../src/process/free-port';
import { listen } from '../support/http';
import { kickoffHeaders, testExportSettings } from '../support/export-stack';
import os from 'node:os';
import type { Pool } from 'pg';
import { ResourceStore } from '../../src/store/resource-store';
import { migratedPool, uniqueTenant } from '../support/database';

describe('when Temporal is unreachable', () => {
  let server: Awaited<ReturnType<typeof listen>>;
  let connection: Connection;
  let pool: Pool;

  beforeAll(async () => {
    pool = await migratedPool();
    // Nothing listens on this port: every call fails with UNAVAILABLE.
    connection = Connection.lazy({ address: `127.0.0.1:${await findFreePort()}`, connectTimeout: 500 });
    const app = createApp({
      config: { baseUrl: 'http://localhost:8080', fhirBasePath: '/fhir' },
      log: createLogger('error'),
      store: new ResourceStore(pool, uniqueTenant('outage')),
      bulkExport: {
        client: new Client({ connection }),
        taskQueue: 'nobody',
        output: new LocalOutputStore(os.tmpdir()),
        exportSettings: testExportSettings,
        retryAfterSeconds: 7,
        temporalTimeoutMs: 1000,
      },
    });
    server = await listen(app);
  });
  afterAll(async () => {
    await server.close();
    await connection.close().catch(() => undefined);
    await pool.end();
  });

  it.each([
    // Every row has a payload (or undefined): jest takes a test function with more parameters than its row for a done-callback test.
    ['kick-off', 'GET', '/fhir/$export', undefined],
    ['status', 'GET', '/fhir/bulkstatus/AAAAAAAAAAAAAAAAAAAAAA', undefined],
    ['cancel', 'DELETE', '/fhir/bulkstatus/AAAAAAAAAAAAAAAAAAAAAA', undefined],
    ['a schedule list', 'GET', '/admin/schedules', undefined],
    ['a schedule read', 'GET', '/admin/schedules/nightly', undefined],
    ['a new schedule', 'POST', '/admin/schedules', { id: 'nightly', every: '1d' }],
    ['a trigger', 'POST', '/admin/schedules/nightly/trigger', undefined],
  ])('answers %s with 503, Retry-After and a transient OperationOutcome', async (_what, method, path, payload: object | undefined) => {
    const res = await fetch(server.url + path, {
      method,
      headers: { ...kickoffHeaders, ...(payload ? { 'Content-Type': 'application/json' } : {}) },
      body: payload ? JSON.stringify(payload) : undefined,
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('7');
    const body = (await res.json()) as { resourceType: string; issue: Array<{ code: string }> };
    expect(body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'transient' }] });
  });
});
