/**
 * Exports to S3 (versitygw) and Azure Blob (Azurite) through a storage service in trouble, each
 * round ending with every resource exactly once: the workers write through a fault-injecting
 * proxy (503 SlowDown / ServerBusy, connections reset mid-upload, answers held back past the
 * client's timeout); the service refusing every request for the export's first six seconds; and the
 * workers killed while a part is half uploaded (a multipart upload or staged blocks open), after
 * which no upload is left behind. The API process reads the files straight from the server, so
 * what is checked is what the workers wrote. Credentials reach every process through each SDK's
 * own chain (AWS_* variables, a connection string), as in production.
 */
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { uniqueTenant } from '../support/database';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy';
import { FAULT_ROUNDS, FaultTable, Topology, until } from '../support/topology';
import { azureProcessEnv, s3ProcessEnv, testEnvironment, testS3Client } from '../harness/environment';

jest.setTimeout(300_000);

interface Cloud {
  name: 's3' | 'azure';
  endpoint(): string;
  /** The process settings, with the endpoint the workers reach the service through. */
  env(endpoint: string): Record<string, string>;
  unavailable: { contentType: string; body: string };
  /** Files of the tenant being uploaded and not yet complete (open multipart uploads, blobs with only uncommitted blocks). */
  openUploads(tenant: string): Promise<string[]>;
}

const blobs = () => BlobServiceClient.fromConnectionString(testEnvironment.azureConnectionString).getContainerClient(testEnvironment.azureContainer);

const clouds: Cloud[] = [
  {
    name: 's3',
    endpoint: () => process.env.TEST_S3_ENDPOINT!,
    env: (endpoint) => ({ ...s3ProcessEnv(), S3_ENDPOINT: endpoint, S3_REQUEST_TIMEOUT_MS: '2000' }),
    unavailable: { contentType: 'application/xml', body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>' },
    openUploads: async (tenant) => ((await testS3Client().send(new ListMultipartUploadsCommand({ Bucket: testEnvironment.s3Bucket, Prefix: `${tenant}/` }))).Uploads ?? []).map((u) => u.Key!),
  },
  {
    name: 'azure',
    endpoint: () => new URL(process.env.TEST_AZURE_ACCOUNT_URL!).origin,
    env: (endpoint) => {
      const env = azureProcessEnv();
      return { ...env, AZURE_STORAGE_CONNECTION_STRING: env.AZURE_STORAGE_CONNECTION_STRING.replace(/BlobEndpoint=http:\/\/[^/]+/, `BlobEndpoint=${endpoint}`) };
    },
    unavailable: { contentType: 'application/xml', body: '<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>The server is busy.</Message></Error>' },
    openUploads: async (tenant) => {
      const committed = new Set<string>();
      for await (const blob of blobs().listBlobsFlat({ prefix: `${tenant}/` })) committed.add(blob.name);
      const open: string[] = [];
      for await (const blob of blobs().listBlobsFlat({ prefix: `${tenant}/`, includeUncommitedBlobs: true })) if (!committed.has(blob.name)) open.push(blob.name);
      return open;
    },
  },
];

describe.each(clouds)('exports to $name through a service in trouble', (cloud) => {
  let proxy: FaultProxy;
  let topology: Topology;
  const faults = new FaultTable();

  beforeAll(async () => {
    proxy = await startFaultProxy(cloud.endpoint(), { unavailable: 0, reset: 0, slow: 0, slowMs: 3000, unavailableBody: cloud.unavailable, keepHost: true });
    topology = new Topology({
      temporal: { address: testEnvironment.temporalAddress, namespace: testEnvironment.temporalNamespace },
      databaseUrl: testEnvironment.databaseUrl,
      tenant: uniqueTenant(`${cloud.name}-faults`),
      // Observation parts of about 11 MB: more than one 8 MB part or block, so a kill can land mid-upload.
      patients: 100,
      env: { ...cloud.env(cloud.endpoint()), EXPORT_PARTITION_SIZE: '20000', EXPORT_PART_MAX_RESOURCES: '20000', EXPORT_PARALLELISM: '4', EXPORT_HEARTBEAT_TIMEOUT_SECONDS: '5' },
    });
    await topology.prepare();
    for (let i = 0; i < 2; i++) await topology.startWorker(cloud.env(proxy.url));
    await topology.startApi();
  }, 180_000);
  afterAll(async () => {
    faults.print(`${cloud.name} faults under exports; the proxy: ${JSON.stringify(proxy?.counts)}`);
    await topology?.stop();
    await proxy?.close();
  });

  const kickOff = async () => {
    const kick = await fetch(`${topology.apis[0].fhir}/$export`, { headers: { Accept: 'application/fhir+json', Prefer: 'respond-async' } });
    expect(kick.status).toBe(202);
    return kick.headers.get('content-location')!;
  };

  it.each(FAULT_ROUNDS)('ends exactly once while writes are throttled, reset mid-upload and time out (round %i)', async () => {
    const before = { ...proxy.counts };
    proxy.setRates({ unavailable: 0.1, reset: 0.05, slow: 0.03 });
    try {
      await faults.round(`${cloud.name}: 10% 503, 5% connections reset, 3% answers past the timeout`, async () => topology.expectExactlyOnce(await kickOff()));
    } finally {
      proxy.setRates({ unavailable: 0, reset: 0, slow: 0 });
    }
    expect(proxy.counts.unavailable).toBeGreaterThan(before.unavailable);
    expect(proxy.counts.reset).toBeGreaterThan(before.reset);
  });

  it.each(FAULT_ROUNDS)('ends exactly once when the service refuses everything for the export\'s first seconds (round %i)', async () => {
    await faults.round(`${cloud.name}: every request refused for the export's first 6 s`, async () => {
      // From the kick-off on: every part's first writes meet the refusal, and the SDK's retries run out before it ends.
      const before = proxy.counts.unavailable;
      proxy.setRates({ unavailable: 1 });
      const statusUrl = await kickOff();
      await new Promise((resolve) => setTimeout(resolve, 6000));
      proxy.setRates({ unavailable: 0 });
      expect(proxy.counts.unavailable - before).toBeGreaterThan(3);
      await topology.expectExactlyOnce(statusUrl);
    });
  });

  it.each(FAULT_ROUNDS)('ends exactly once, leaving no upload behind, when the workers die mid-upload (round %i)', async () => {
    await faults.round(`${cloud.name}: workers killed while a part is half uploaded`, async () => {
      const statusUrl = await kickOff();
      let open: string[] = [];
      await until(async () => (open = await cloud.openUploads(topology.tenant)).length > 0, 'a part half uploaded', 90_000);
      for (const worker of topology.workers) worker.child.kill('SIGKILL');
      await topology.heal({ workers: 2, apis: 1 }, cloud.env(proxy.url));
      await topology.expectExactlyOnce(statusUrl);
      // The killed uploads' parts were retried to the same keys, which ended them.
      expect(await cloud.openUploads(topology.tenant)).toEqual([]);
      expect(open.length).toBeGreaterThan(0);
    });
  });
});
