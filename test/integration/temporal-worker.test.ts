import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, Runtime, DefaultLogger } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createActivities } from '../../activities';
import os from 'node:os';
import { LocalOutputStore } from '../../src/output/local-output-store';
import { migratedPool } from '../support/database';
import { exportSearchAttributeKeys } from '../../src/temporal/search-attribute-registry';
import { testEnvironment } from '../harness/environment';
import { probeExportPlan } from '../fixtures/probe-workflows';
import { ResourceStore } from '../../src/store/resource-store';

Runtime.install({ logger: new DefaultLogger('WARN') });

describe('Temporal dev server', () => {
  let pool: Pool;
  let connection: Connection;
  let client: Client;

  beforeAll(async () => {
    pool = await migratedPool(2);
    connection = await Connection.connect({ address: testEnvironment.temporalAddress });
    client = new Client({ connection, namespace: testEnvironment.temporalNamespace });
  });

  afterAll(async () => {
    await connection?.close();
    await pool?.end();
  });

  it('runs a workflow whose activity plans an export in PostgreSQL, through a real worker', async () => {
    const nativeConnection = await NativeConnection.connect({ address: testEnvironment.temporalAddress });
    const taskQueue = `test-${randomUUID()}`;
    const worker = await Worker.create({
      connection: nativeConnection,
      namespace: testEnvironment.temporalNamespace,
      taskQueue,
      workflowsPath: require.resolve('../fixtures/probe-workflows'),
      activities: createActivities({ pool, output: new LocalOutputStore(os.tmpdir()) }),
    });
    // A tenant of its own: 25 Patients and 10 Observations, planned in partitions of about 10.
    const tenant = `probe-${randomUUID().slice(0, 8)}`;
    await new ResourceStore(pool, tenant).write([
      ...Array.from({ length: 25 }, (_, i) => ({ op: 'put' as const, resource: { resourceType: 'Patient', id: `p${i}` } })),
      ...Array.from({ length: 10 }, (_, i) => ({ op: 'put' as const, resource: { resourceType: 'Observation', id: `o${i}`, status: 'final', code: { text: 'x' } } })),
    ]);
    const before = Date.now();
    const result = await worker.runUntil(client.workflow.execute(probeExportPlan, { taskQueue, workflowId: `probe-${randomUUID()}`, args: [tenant, 10] }));
    await nativeConnection.close();

    expect(result.totals).toEqual({ Patient: 25, Observation: 10 });
    expect(result.partitionsPerType.Patient).toBeGreaterThanOrEqual(2); // the plan cut the larger type
    expect(Object.keys(result.partitionsPerType).sort()).toEqual(['Observation', 'Patient']);
    const databaseTime = Date.parse(result.transactionTime);
    expect(Number.isNaN(databaseTime)).toBe(false);
    expect(databaseTime).toBeGreaterThanOrEqual(before - 5_000);
    expect(databaseTime).toBeLessThanOrEqual(Date.now() + 5_000);
  });

  it('has the export search attributes registered', async () => {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({
      namespace: testEnvironment.temporalNamespace,
    });
    for (const key of exportSearchAttributeKeys) {
      expect(Object.keys(customAttributes ?? {})).toContain(key.name);
    }
  });
});
