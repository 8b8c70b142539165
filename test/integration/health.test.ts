/**
 * `/healthz` and `/readyz` for load balancers: public, and ready only when PostgreSQL and
 * Temporal both answer; otherwise 503 with an OperationOutcome naming what did not.
 */
import { Client, Connection } from '@temporalio/client';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import { LocalOutputStore } from '../../src/output/local-output-store';
import { findFreePort } from '../../src/process/free-port';
import { createPool } from '../../src/store/database';
import { ResourceStore } from '../../src/store/resource-store';
import { testEnvironment } from '../harness/environment';
import { testExportSettings } from '../support/export-stack';
import { listen } from '../support/http';

async function appWith(databaseUrl: string, temporalAddress: string) {
  const pool = createPool(databaseUrl, { max: 1, connectionTimeoutMillis: 1000 });
  const connection = Connection.lazy({ address: temporalAddress }); // connects on first use: the unreachable case too
  const app = createApp({
    config: { baseUrl: 'http://127.0.0.1', fhirBasePath: '/fhir' },
    log: createLogger('error'),
    store: new ResourceStore(pool),
    bulkExport: { client: new Client({ connection }), taskQueue: 'health', output: new LocalOutputStore('/nonexistent'), exportSettings: testExportSettings, retryAfterSeconds: 1 },
  });
  const server = await listen(app);
  return { url: server.url, close: async () => (await server.close(), await connection.close(), await pool.end()) };
}

describe('health endpoints', () => {
  it('answers /healthz always and /readyz 200 when PostgreSQL and Temporal answer', async () => {
    const app = await appWith(testEnvironment.databaseUrl, testEnvironment.temporalAddress);
    try {
      const health = await fetch(`${app.url}/healthz`);
      expect(health.status).toBe(200);
      const ready = await fetch(`${app.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', postgres: 'ok', temporal: 'ok' });
    } finally {
      await app.close();
    }
  });

  it('answers /readyz 503 with an OperationOutcome naming PostgreSQL and Temporal when neither answers', async () => {
    const closedPort = await findFreePort();
    const url = new URL(testEnvironment.databaseUrl);
    url.port = String(closedPort);
    const app = await appWith(url.toString(), `127.0.0.1:${await findFreePort()}`);
    try {
      expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${app.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get('retry-after')).toBe('5');
      const outcome = (await ready.json()) as { resourceType: string; issue: { code: string; diagnostics: string }[] };
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue.map((i) => i.diagnostics.split(':')[0])).toEqual(['Not ready', 'Not ready']);
      expect(outcome.issue.map((i) => i.diagnostics)).toEqual([expect.stringContaining('PostgreSQL'), expect.stringContaining('Temporal')]);
    } finally {
      await app.close();
    }
  });
});
