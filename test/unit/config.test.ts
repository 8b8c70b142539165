import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';

describe('loadConfig', () => {
  it('has working defaults for the embedded setup', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      baseUrl: 'http://localhost:8080',
      fhirBasePath: '/fhir',
      databaseUrl: 'postgres://127.0.0.1:5432/bulkflow',
      temporalAddress: undefined,
      temporalNamespace: 'default',
      temporalTaskQueue: 'bulkflow-export',
      outputBackend: 'local',
      outputDir: path.resolve('data/exports'),
      devTemporalUiPort: 8233,
      statusRetryAfterSeconds: 2,
      statusRetryAfterMaxSeconds: 30,
      exportResultPattern: 'manifest',
      asyncSyncWaitMs: 1000,
    });
    expect(config.export.manifestPageFiles).toBe(100);
    expect(config.trustedProxies).toEqual([]); // no client's forwarded headers are believed by default
  });

  it('reads TEMPORAL_PAYLOAD_KEYS in order (the first encrypts), and never echoes a key in its errors', () => {
    const [a, b] = [Buffer.alloc(32, 7), Buffer.alloc(32, 9)];
    expect(loadConfig({ TEMPORAL_PAYLOAD_KEYS: `2026-12:${a.toString('base64')}, 2026-01:${b.toString('base64')}` }).temporalPayloadKeys).toEqual([
      { id: '2026-12', key: a },
      { id: '2026-01', key: b },
    ]);
    expect(loadConfig({}).temporalPayloadKeys).toBeUndefined();
    const secret = Buffer.alloc(31, 5).toString('base64');
    expect(() => loadConfig({ TEMPORAL_PAYLOAD_KEYS: `k:${secret}` })).toThrow(/^(?:(?!AAAA|BQUF).)*$/);
  });

  it('believes forwarded headers only from the proxies TRUSTED_PROXIES names, with TRUST_FORWARDED_HEADERS=true', () => {
    expect(loadConfig({ TRUST_FORWARDED_HEADERS: 'true', TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.7,2001:db8::/32' }).trustedProxies).toEqual(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']);
    expect(loadConfig({ TRUST_FORWARDED_HEADERS: 'false' }).trustedProxies).toEqual([]);
  });

  it('derives BASE_URL from PORT and strips a trailing slash', () => {
    expect(loadConfig({ PORT: '9000' }).baseUrl).toBe('http://localhost:9000');
    expect(loadConfig({ BASE_URL: 'https://bulk.example.org/' }).baseUrl).toBe('https://bulk.example.org');
  });

  it.each([
    ['PORT', { PORT: 'eighty' }],
    ['PORT', { PORT: '70000' }],
    ['BASE_URL', { BASE_URL: 'ftp://example.org' }],
    ['BASE_URL', { BASE_URL: 'not a url' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://localhost/x' }],
    ['OUTPUT_BACKEND', { OUTPUT_BACKEND: 'ftp' }],
    ['S3_BUCKET', { OUTPUT_BACKEND: 's3' }],
    ['S3_BUCKET', { OUTPUT_BACKEND: 's3', S3_BUCKET: 'Bad_Bucket' }],
    ['S3_ENDPOINT', { OUTPUT_BACKEND: 's3', S3_BUCKET: 'exports', S3_ENDPOINT: 'minio:9000' }],
    ['S3_PREFIX', { OUTPUT_BACKEND: 's3', S3_BUCKET: 'exports', S3_PREFIX: '../other' }],
    ['AZURE_STORAGE_CONTAINER', { OUTPUT_BACKEND: 'azure', AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net' }],
    ['AZURE_STORAGE_ACCOUNT_URL', { OUTPUT_BACKEND: 'azure', AZURE_STORAGE_CONTAINER: 'exports' }], // neither way to sign in
    ['AZURE_STORAGE_ACCOUNT_URL', { OUTPUT_BACKEND: 'azure', AZURE_STORAGE_CONTAINER: 'exports', AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net', AZURE_STORAGE_CONNECTION_STRING: 'AccountName=a;AccountKey=b' }],
    ['AZURE_STORAGE_PREFIX', { OUTPUT_BACKEND: 'azure', AZURE_STORAGE_CONTAINER: 'exports', AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net', AZURE_STORAGE_PREFIX: 'a b/' }],
    ['GCS_BUCKET', { OUTPUT_BACKEND: 'gcs' }],
    ['GCS_BUCKET', { OUTPUT_BACKEND: 'gcs', GCS_BUCKET: 'Bad Bucket' }],
    ['TEMPORAL_ADDRESS', { TEMPORAL_ADDRESS: 'http://localhost:7233' }],
    ['FHIR_BASE_PATH', { FHIR_BASE_PATH: 'fhir' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    ['WORKER_MAX_CONCURRENT_ACTIVITIES', { WORKER_MAX_CONCURRENT_ACTIVITIES: '0' }],
    ['EXPORT_RESULT_PATTERN', { EXPORT_RESULT_PATTERN: 'redirect' }],
    ['STATUS_RETRY_AFTER_MAX_SECONDS', { STATUS_RETRY_AFTER_SECONDS: '10', STATUS_RETRY_AFTER_MAX_SECONDS: '5' }],
    ['ASYNC_SYNC_WAIT_MS', { ASYNC_SYNC_WAIT_MS: '-1' }],
    ['DOWNLOADS_REQUIRE_TOKEN', { DOWNLOADS_REQUIRE_TOKEN: 'false' }], // the local backend cannot sign URLs
    ['AUTH_TRUSTED_ISSUERS', { AUTH_TRUSTED_ISSUERS: 'https://issuer.example' }],
    ['TENANT_MAX_RUNNING_EXPORTS', { TENANT_MAX_RUNNING_EXPORTS: '0' }],
    ['TEMPORAL_PAYLOAD_KEYS', { TEMPORAL_PAYLOAD_KEYS: 'k1' }],
    ['TEMPORAL_PAYLOAD_KEYS', { TEMPORAL_PAYLOAD_KEYS: `k1:${Buffer.alloc(16).toString('base64')}` }], // 16 bytes, not 32
    ['TEMPORAL_PAYLOAD_KEYS', { TEMPORAL_PAYLOAD_KEYS: `k1:${Buffer.alloc(32).toString('base64')},k1:${Buffer.alloc(32, 1).toString('base64')}` }],
    ['TRUSTED_PROXIES', { TRUST_FORWARDED_HEADERS: 'true' }], // trust without saying whom
    ['TRUSTED_PROXIES', { TRUSTED_PROXIES: '10.0.0.1' }], // a list that would silently do nothing
    ['TRUSTED_PROXIES', { TRUST_FORWARDED_HEADERS: 'true', TRUSTED_PROXIES: 'proxy.internal' }],
    ['TRUSTED_PROXIES', { TRUST_FORWARDED_HEADERS: 'true', TRUSTED_PROXIES: '10.0.0.0/33' }],
    ['TRUST_FORWARDED_HEADERS', { TRUST_FORWARDED_HEADERS: 'yes', TRUSTED_PROXIES: '10.0.0.1' }],
  ])('refuses an invalid %s with a message naming it', (variable, env) => {
    let thrown: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).variable).toBe(variable);
    expect((thrown as Error).message).toContain(variable);
  });

  it('reads the S3 and Azure settings, credentials left to each SDK, and signed URLs on every bucket backend', () => {
    expect(loadConfig({ OUTPUT_BACKEND: 's3', S3_BUCKET: 'exports', S3_ENDPOINT: 'http://127.0.0.1:9000/', S3_FORCE_PATH_STYLE: 'true', S3_PREFIX: 'bulkflow' }).s3).toEqual({
      bucket: 'exports', region: undefined, endpoint: 'http://127.0.0.1:9000', forcePathStyle: true, prefix: 'bulkflow/', requestTimeoutMs: 60_000,
    });
    expect(loadConfig({ OUTPUT_BACKEND: 'azure', AZURE_STORAGE_CONTAINER: 'exports', AZURE_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net' }).azure).toEqual({
      accountUrl: 'https://acct.blob.core.windows.net', connectionString: undefined, container: 'exports', prefix: '',
    });
    expect(loadConfig({ OUTPUT_BACKEND: 'local' }).s3).toBeUndefined();
    for (const env of [{ OUTPUT_BACKEND: 's3', S3_BUCKET: 'exports' }, { OUTPUT_BACKEND: 'azure', AZURE_STORAGE_CONTAINER: 'exports', AZURE_STORAGE_CONNECTION_STRING: 'AccountName=a;AccountKey=b' }]) {
      expect(loadConfig({ ...env, DOWNLOADS_REQUIRE_TOKEN: 'false' }).downloadsRequireToken).toBe(false);
    }
  });

  it('bounds the SQL engine: spill under DATA_DIR with a small cap, result bytes, queries at once per process and per tenant', () => {
    const { sql } = loadConfig({ DATA_DIR: '/srv/bulkflow', SQL_RUN_MAX_RESULT_MB: '8', SQL_MAX_CONCURRENT: '3' });
    expect(sql.run).toMatchObject({ spillDirectory: path.join('/srv/bulkflow', 'sql-spill'), spillLimitMb: 512, maxResultBytes: 8 * 1024 * 1024 });
    expect(sql.export).toMatchObject({ spillDirectory: path.join('/srv/bulkflow', 'sql-spill'), maxResultBytes: Infinity });
    expect(sql.admission).toEqual({ perProcess: 3, perTenant: 2 });
    expect(loadConfig({ SQL_MAX_CONCURRENT: '1' }).sql.admission).toEqual({ perProcess: 1, perTenant: 1 });
    expect(() => loadConfig({ SQL_MAX_CONCURRENT: '2', SQL_MAX_CONCURRENT_PER_TENANT: '3' })).toThrow('SQL_MAX_CONCURRENT_PER_TENANT');
  });

  it('reads STORAGE_EMULATOR_HOST with or without the /storage/v1 suffix as the API endpoint', () => {
    expect(loadConfig({ STORAGE_EMULATOR_HOST: 'http://127.0.0.1:4443/storage/v1' }).gcsApiEndpoint).toBe(
      'http://127.0.0.1:4443',
    );
    expect(loadConfig({ STORAGE_EMULATOR_HOST: '127.0.0.1:4443' }).gcsApiEndpoint).toBe('http://127.0.0.1:4443');
  });
});
