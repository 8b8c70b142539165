/**
 * Exports to GCS through a storage service in trouble: the workers write parts through a
 * fault-injecting proxy in front of fake-gcs-server (10% of requests answered 503, 5% of
 * connections reset, 5% of answers held back past the client's request timeout), `FAULT_ROUNDS`
 * exports, each ending with every resource exactly once. The API process reads the files
 * straight from the emulator, so what is checked is what the workers wrote. Every process is
 * configured as docs/operations.md says, with STORAGE_EMULATOR_HOST as `http://host:port`.
 */
import { uniqueTenant } from '../support/database';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy';
import { FAULT_ROUNDS, FaultTable, Topology } from '../support/topology';
import { testEnvironment } from '../harness/environment';

jest.setTimeout(240_000);

describe('exports to GCS through a faulty proxy', () => {
  let proxy: FaultProxy;
  let topology: Topology;
  const faults = new FaultTable();

  beforeAll(async () => {
    proxy = await startFaultProxy(testEnvironment.gcsEndpoint, { unavailable: 0.1, reset: 0.05, slow: 0.05, slowMs: 3000 });
    topology = new Topology({
      temporal: { address: testEnvironment.temporalAddress, namespace: testEnvironment.temporalNamespace },
      databaseUrl: testEnvironment.databaseUrl,
      tenant: uniqueTenant('gcs-faults'),
      patients: 30,
      env: {
        OUTPUT_BACKEND: 'gcs',
        GCS_BUCKET: testEnvironment.gcsBucket,
        STORAGE_EMULATOR_HOST: testEnvironment.gcsEndpoint,
        GCS_REQUEST_TIMEOUT_MS: '1500',
        EXPORT_PARTITION_SIZE: '400',
        EXPORT_PART_MAX_RESOURCES: '100',
        EXPORT_PARALLELISM: '4',
        EXPORT_HEARTBEAT_TIMEOUT_SECONDS: '5',
      },
    });
    await topology.prepare();
    for (let i = 0; i < 2; i++) await topology.startWorker({ STORAGE_EMULATOR_HOST: proxy.url });
    await topology.startApi();
  }, 120_000);
  afterAll(async () => {
    faults.print(`GCS faults (503s, resets, answers slower than the client waits) under exports; the proxy: ${JSON.stringify(proxy?.counts)}`);
    await topology?.stop();
    await proxy?.close();
  });

  it.each(FAULT_ROUNDS)('ends with every resource exactly once while part writes fail, reset and time out (round %i)', async () => {
    const before = { ...proxy.counts };
    await faults.round('GCS: 10% 503, 5% connection resets, 5% answers past the timeout', async () => {
      const kick = await fetch(`${topology.apis[0].fhir}/$export`, { headers: { Accept: 'application/fhir+json', Prefer: 'respond-async' } });
      expect(kick.status).toBe(202);
      await topology.expectExactlyOnce(kick.headers.get('content-location')!);
    });
    // The faults happened to this export's writes, each kind.
    expect(proxy.counts.unavailable).toBeGreaterThan(before.unavailable);
    expect(proxy.counts.reset).toBeGreaterThan(before.reset);
    expect(proxy.counts.slow).toBeGreaterThan(before.slow);
  });
});
