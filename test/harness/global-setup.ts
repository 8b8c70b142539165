/**
 * Starts the real components once per test run: a Temporal dev server, fake-gcs-server, an S3
 * server (versitygw) and Azurite on free ports, and a fresh PostgreSQL database. Their addresses reach the tests as TEST_* env
 * vars; global-teardown stops them and drops the database, also when tests failed.
 */
import { Storage } from '@google-cloud/storage';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from '../../src/output/azurite';
import { startS3Server } from '../../src/output/s3-server';
import { testS3Client } from './environment';
import { startGcsEmulator } from '../../src/output/gcs-emulator';
import { createClient, ensureDatabase, dropDatabase } from '../../src/store/database';
import { startDevServer } from '../../src/temporal/dev-server';
import { ensureLocalPostgres } from './local-postgres';
import { setRunningHarness, type RunningHarness } from './running';

const DATABASE_PREFIX = 'bulkflow_test_';

/** Drops test databases left by runs whose process is gone (a run killed before its teardown). */
async function dropOrphanedDatabases(serverUrl: string): Promise<void> {
  const url = new URL(serverUrl);
  url.pathname = '/postgres';
  const client = createClient(url.toString());
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datname LIKE $1',
      [`${DATABASE_PREFIX}%`],
    );
    for (const { datname } of rows) {
      const pid = Number(datname.slice(DATABASE_PREFIX.length).split('_')[0]);
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) continue;
      url.pathname = `/${datname}`;
      await dropDatabase(url.toString());
    }
  } finally {
    await client.end();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export default async function globalSetup(): Promise<void> {
  const serverUrl = process.env.TEST_DATABASE_SERVER_URL ?? 'postgres://127.0.0.1:5432';
  const harness: RunningHarness = { stops: [] };
  setRunningHarness(harness);
  try {
    await ensureLocalPostgres(serverUrl);
    await dropOrphanedDatabases(serverUrl);
    const databaseUrl = new URL(serverUrl);
    databaseUrl.pathname = `/${DATABASE_PREFIX}${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    await ensureDatabase(databaseUrl.toString());
    harness.stops.push(() => dropDatabase(databaseUrl.toString()));
    process.env.TEST_DATABASE_URL = databaseUrl.toString();

    const [temporal, gcs, s3, azurite] = await Promise.all([startDevServer({ headless: true }), startGcsEmulator(), startS3Server(), startAzurite()]);
    harness.stops.push(temporal.stop, gcs.stop, s3.stop, azurite.stop);
    process.env.TEST_S3_ENDPOINT = s3.endpoint;
    process.env.TEST_S3_REGION = s3.region;
    process.env.TEST_S3_ACCESS_KEY_ID = s3.accessKeyId;
    process.env.TEST_S3_SECRET_ACCESS_KEY = s3.secretAccessKey;
    process.env.TEST_S3_BUCKET = 'bulkflow-test';
    await testS3Client().send(new CreateBucketCommand({ Bucket: 'bulkflow-test' }));
    process.env.TEST_AZURE_ACCOUNT_URL = azurite.accountUrl;
    process.env.TEST_AZURE_CONNECTION_STRING = azurite.connectionString;
    process.env.TEST_AZURE_CONTAINER = 'bulkflow-test';
    await BlobServiceClient.fromConnectionString(azurite.connectionString).createContainer('bulkflow-test');
    process.env.TEST_TEMPORAL_ADDRESS = temporal.address;
    process.env.TEST_TEMPORAL_NAMESPACE = temporal.namespace;
    process.env.TEST_GCS_ENDPOINT = gcs.endpoint;
    process.env.TEST_GCS_BUCKET = 'bulkflow-test';
    await new Storage({ apiEndpoint: gcs.endpoint, projectId: 'bulkflow-test' }).createBucket('bulkflow-test');
  } catch (err) {
    await stopAll(harness);
    throw err;
  }
}

export async function stopAll(harness: RunningHarness): Promise<void> {
  const failures: unknown[] = [];
  for (const stop of harness.stops.reverse()) {
    await stop().catch((err: unknown) => failures.push(err));
  }
  harness.stops = [];
  if (failures.length > 0) throw new AggregateError(failures, 'test harness teardown failed');
}
