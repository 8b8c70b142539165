import { S3Client } from '@aws-sdk/client-s3';

/** The addresses global-setup handed to the tests. */
function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\` so jest's global setup starts the services`);
  return value;
}

export const testEnvironment = {
  get databaseUrl() {
    return required('TEST_DATABASE_URL');
  },
  get temporalAddress() {
    return required('TEST_TEMPORAL_ADDRESS');
  },
  get temporalNamespace() {
    return required('TEST_TEMPORAL_NAMESPACE');
  },
  get gcsEndpoint() {
    return required('TEST_GCS_ENDPOINT');
  },
  get gcsBucket() {
    return required('TEST_GCS_BUCKET');
  },
  get s3Bucket() {
    return required('TEST_S3_BUCKET');
  },
  get azureConnectionString() {
    return required('TEST_AZURE_CONNECTION_STRING');
  },
  get azureContainer() {
    return required('TEST_AZURE_CONTAINER');
  },
};

/** An S3 client of the test run's S3 server, signed with its keys (the SDK's default chain is not consulted). */
export function testS3Client(): S3Client {
  return new S3Client({
    endpoint: required('TEST_S3_ENDPOINT'),
    region: required('TEST_S3_REGION'),
    forcePathStyle: true,
    credentials: { accessKeyId: required('TEST_S3_ACCESS_KEY_ID'), secretAccessKey: required('TEST_S3_SECRET_ACCESS_KEY') },
  });
}

/** What a bulkflow process needs to write to the test run's S3 server (credentials through the SDK's default chain, as in production). */
export function s3ProcessEnv(prefix = ''): Record<string, string> {
  return {
    OUTPUT_BACKEND: 's3',
    S3_BUCKET: required('TEST_S3_BUCKET'),
    S3_ENDPOINT: required('TEST_S3_ENDPOINT'),
    S3_REGION: required('TEST_S3_REGION'),
    S3_FORCE_PATH_STYLE: 'true',
    ...(prefix ? { S3_PREFIX: prefix } : {}),
    AWS_ACCESS_KEY_ID: required('TEST_S3_ACCESS_KEY_ID'),
    AWS_SECRET_ACCESS_KEY: required('TEST_S3_SECRET_ACCESS_KEY'),
  };
}

/** What a bulkflow process needs to write to the test run's Azurite (the development connection string). */
export function azureProcessEnv(prefix = ''): Record<string, string> {
  return {
    OUTPUT_BACKEND: 'azure',
    AZURE_STORAGE_CONNECTION_STRING: required('TEST_AZURE_CONNECTION_STRING'),
    AZURE_STORAGE_CONTAINER: required('TEST_AZURE_CONTAINER'),
    ...(prefix ? { AZURE_STORAGE_PREFIX: prefix } : {}),
  };
}
