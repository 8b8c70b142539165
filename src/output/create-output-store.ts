import { readFileSync } from 'node:fs';
import type { AzureSettings, Config, S3Settings } from '../config';
import { GcsOutputStore } from './gcs-output-store';
import { LocalOutputStore } from './local-output-store';
import type { OutputStore } from './output-store';

type OutputConfig = Pick<Config, 'outputBackend' | 'outputDir' | 'gcsBucket' | 'gcsProjectId' | 'gcsApiEndpoint' | 'gcsSigningKeyFile' | 'gcsRequestTimeoutMs' | 's3' | 'azure'>;

/**
 * The configured output store. Each cloud's client library is loaded only for its backend: a
 * client and its auth stack cost a process megabytes of memory that the other backends never use.
 */
export function createOutputStore(config: OutputConfig): OutputStore {
  switch (config.outputBackend) {
    case 'local':
      return new LocalOutputStore(config.outputDir);
    case 's3':
      return createS3Store(config.s3!);
    case 'azure':
      return createAzureStore(config.azure!);
    case 'gcs':
      return createGcsStore(config);
  }
}

function createGcsStore(config: OutputConfig): OutputStore {
  const { Storage } = require('@google-cloud/storage') as typeof import('@google-cloud/storage');
  // Signed URLs need a service-account key; with GCS_SIGNING_KEY_FILE it also signs for the emulator.
  const key = config.gcsSigningKeyFile ? (JSON.parse(readFileSync(config.gcsSigningKeyFile, 'utf8')) as { client_email: string; private_key: string }) : undefined;
  // @google-cloud/storage reads STORAGE_EMULATOR_HOST itself and takes it verbatim as the JSON
  // API's base URL, which needs the /storage/v1 suffix bulkflow accepts without: set as
  // `http://host:port`, uploads worked and every read, listing and deletion answered 404.
  if (process.env.STORAGE_EMULATOR_HOST !== undefined && config.gcsApiEndpoint) process.env.STORAGE_EMULATOR_HOST = `${config.gcsApiEndpoint}/storage/v1`;
  const storage = new Storage({
    timeout: config.gcsRequestTimeoutMs,
    ...(config.gcsApiEndpoint ? { apiEndpoint: config.gcsApiEndpoint } : {}),
    ...(config.gcsProjectId ? { projectId: config.gcsProjectId } : {}),
    ...(key ? { credentials: { client_email: key.client_email, private_key: key.private_key } } : {}),
  });
  return new GcsOutputStore(storage, config.gcsBucket!, '', config.gcsApiEndpoint);
}

/** The AWS SDK's default credential chain (environment, web identity / IRSA, ECS, instance profile, profiles): no secret in bulkflow's settings. */
export function createS3Store(settings: S3Settings): OutputStore {
  const { S3Client } = require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
  const { NodeHttpHandler } = require('@smithy/node-http-handler') as typeof import('@smithy/node-http-handler');
  const { S3OutputStore } = require('./s3-output-store') as typeof import('./s3-output-store');
  const client = new S3Client({
    ...(settings.region ? { region: settings.region } : {}),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    // The SDK retries throttling (503 SlowDown) and dropped connections itself, with backoff; the activity's retry is the last resort.
    maxAttempts: 5,
    requestHandler: new NodeHttpHandler({ requestTimeout: settings.requestTimeoutMs, connectionTimeout: 10_000 }),
  });
  return new S3OutputStore(client, settings.bucket, settings.prefix);
}

/** An account URL signs in with DefaultAzureCredential (workload identity, managed identity, Azure CLI); a connection string with its account key. */
export function createAzureStore(settings: AzureSettings): OutputStore {
  const { BlobServiceClient } = require('@azure/storage-blob') as typeof import('@azure/storage-blob');
  const { AzureOutputStore } = require('./azure-output-store') as typeof import('./azure-output-store');
  const retryOptions = { maxTries: 5 };
  let service;
  if (settings.connectionString) {
    service = BlobServiceClient.fromConnectionString(settings.connectionString, { retryOptions });
  } else {
    const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
    service = new BlobServiceClient(settings.accountUrl!, new DefaultAzureCredential(), { retryOptions });
  }
  return new AzureOutputStore(service, settings.container, settings.prefix);
}
