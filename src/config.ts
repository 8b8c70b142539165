/**
 * The one place bulkflow reads its environment. Every variable, its default and its meaning is
 * listed here and in docs/configuration.md; an invalid value stops the process at
 * start with a message that names the variable.
 */
import path from 'node:path';
import type { ExportTuning } from './contracts/bulk-export';
import { parseProxyEntry } from './http/trusted-proxies';
import type { PayloadKey } from './temporal/payload-codec';
import { loadSubmitters, SubmitterError, type Submitter } from './bulk-submit/submitters';
import { DEFAULT_SQL_ADMISSION, DEFAULT_SQL_EXPORT_LIMITS, DEFAULT_SQL_LIMITS, type EngineLimits, type SqlAdmissionLimits } from './sql/engine-types';

/** The largest REST write (a resource, or a batch or transaction Bundle): a DocumentReference with an inline attachment runs to tens of MB. */
export const DEFAULT_MAX_RESOURCE_BYTES = 64 * 1024 ** 2;

export type OutputBackend = 'local' | 'gcs' | 's3' | 'azure';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';
export type ResultPattern = 'manifest' | 'see-other';

export interface Config {
  /** HTTP port of the API. */
  port: number;
  /** Interface the API listens on; unset, the command's own (`serve`: every interface, `dev`: loopback). See listenPolicy. */
  host: string | undefined;
  /** How long the API keeps an idle connection open: longer than any load balancer's idle timeout in front of it. */
  httpKeepAliveTimeoutSeconds: number;
  /** Public origin used to build absolute URLs (Content-Location, manifest URLs). */
  baseUrl: string;
  /** Path under which the FHIR API is mounted. */
  fhirBasePath: string;
  /**
   * Proxies (addresses or CIDRs) whose X-Forwarded-* / Forwarded headers are believed for URLs and
   * the client address: TRUSTED_PROXIES when TRUST_FORWARDED_HEADERS=true, else none.
   */
  trustedProxies: string[];
  /** Token URLs a client assertion may name as `aud`, besides BASE_URL's own. */
  tokenAudiences: string[];
  databaseUrl: string;
  /** Address of an existing Temporal frontend; unset means `bulkflow dev` starts its own. */
  temporalAddress: string | undefined;
  temporalNamespace: string;
  temporalTaskQueue: string;
  /** At start, register bulkflow's search attributes on the namespace when they are missing (false: only check). */
  temporalRegisterSearchAttributes: boolean;
  /**
   * Keys that encrypt every Temporal payload (AES-256-GCM): the first encrypts, all decrypt.
   * Unset: one key generated on first use and kept in the store (src/temporal/payload-keys.ts).
   */
  temporalPayloadKeys: PayloadKey[] | undefined;
  /** Origins of Temporal Web UIs whose browsers may call the codec server (`/codec`); `bulkflow dev` adds its own UI. */
  codecCorsOrigins: string[];
  /** How to reach TEMPORAL_ADDRESS securely (Temporal Cloud: an API key, or mTLS client certificates). */
  temporalTls: TemporalTlsSettings;
  /** Explicit path of the `temporal` CLI used for the embedded dev server. */
  temporalCliPath: string | undefined;
  /** What `bulkflow dev` starts when TEMPORAL_ADDRESS is unset: the CLI's dev server, or the Temporal server on PostgreSQL. */
  devTemporal: 'dev-server' | 'server';
  /** Ports of the embedded dev server (`bulkflow dev`). */
  devTemporalPort: number;
  devTemporalUiPort: number;
  /** Patients `bulkflow dev` generates into an empty store, so there is something to export. */
  devSeedPatients: number;
  /** Directory for local state: the dev server's SQLite file and local export output. */
  dataDir: string;
  outputBackend: OutputBackend;
  outputDir: string;
  gcsBucket: string | undefined;
  gcsProjectId: string | undefined;
  /** GCS API endpoint for an emulator (fake-gcs-server); unset means Google Cloud Storage. */
  gcsApiEndpoint: string | undefined;
  /** A service-account key (JSON) that signs download URLs. */
  gcsSigningKeyFile: string | undefined;
  /** How long one GCS request may take before the client gives it up (and the write is retried). */
  gcsRequestTimeoutMs: number;
  /** S3 or an S3-compatible server (OUTPUT_BACKEND=s3); credentials come from the AWS SDK's default chain, never from here. */
  s3: S3Settings | undefined;
  /** Azure Blob Storage (OUTPUT_BACKEND=azure). */
  azure: AzureSettings | undefined;
  /** false: manifests list signed URLs that need no token (`requiresAccessToken: false`; GCS, S3 and Azure). */
  downloadsRequireToken: boolean;
  /** Lifetime of signed download URLs. */
  signedUrlTtlSeconds: number;
  /** Slots for workflow-side activities: planning, cleanup, async requests, schedules' ledger and webhooks. */
  workerMaxConcurrentActivities: number;
  /** Slots for partition activities, on the partition task queue (`<TEMPORAL_TASK_QUEUE>-partitions`). */
  workerMaxConcurrentPartitions: number;
  /** After SIGTERM, how long running activities get to finish or heartbeat before they are cancelled (and retried elsewhere). */
  workerShutdownGraceSeconds: number;
  export: ExportSettings;
  /** Seconds a client is told to wait between status polls (Retry-After), at least... */
  statusRetryAfterSeconds: number;
  /** ...and at most, growing with an export's expected remaining time. */
  statusRetryAfterMaxSeconds: number;
  /** `$export` completion: the Bulk Data IG's 200 with the manifest, or 303 to a result URL. */
  exportResultPattern: ResultPattern;
  /** The SQL engine's limits for `$sql-run` and for an export's SQL subjects, and how many `$sql-run` queries run at once. */
  sql: { run: EngineLimits; export: EngineLimits; admission: SqlAdmissionLimits };
  /** How long a `Prefer: respond-async` request may take and still be answered synchronously. */
  asyncSyncWaitMs: number;
  /** `$bulk-submit` and `$import`: the providers each tenant accepts (BULK_SUBMITTERS_FILE), and files one submission loads at once. */
  bulkSubmit: { submitters: Submitter[]; maxParallelFiles: number };
  /** A request header that names the tenant (besides the `/t/{tenant}` path prefix). */
  tenantHeader: string | undefined;
  /** Running exports one tenant may have at once (finished ones do not count). */
  tenantMaxRunningExports: number;
  /** The largest REST write body in bytes (a resource, or a batch or transaction Bundle); larger ones are refused with 413. */
  maxResourceBytes: number;
  /** SMART Backend Services authorization (off for the embedded demo). */
  auth: AuthSettings;
  /** How much sooner than its Retry-After a poll may come before it is answered 429. */
  statusPollToleranceMs: number;
  logLevel: LogLevel;
  /** `json` lines (default) or `pretty` for a terminal. */
  logFormat: LogFormat;
  /** Port of the process's metrics listener (`/metrics`, `/healthz`, `/readyz`); unset: none. */
  metricsPort: number | undefined;
  /** Interface of the metrics listener: loopback unless set (it is not the public API). */
  metricsHost: string;
}

export interface S3Settings {
  bucket: string;
  /** The bucket's region; unset, the SDK's own (AWS_REGION, the profile), else us-east-1. */
  region: string | undefined;
  /** An S3-compatible server's URL (MinIO, R2, Ceph, SeaweedFS); unset, AWS S3. */
  endpoint: string | undefined;
  /** Path-style addressing (`<endpoint>/<bucket>/<key>`), which most S3-compatible servers need. */
  forcePathStyle: boolean;
  /** Key prefix for every file bulkflow writes (e.g. `bulkflow/`), so the bucket can be shared. */
  prefix: string;
  requestTimeoutMs: number;
}

export interface AzureSettings {
  /** `https://<account>.blob.core.windows.net` (or Azurite's `http://127.0.0.1:10000/<account>`); signed in with DefaultAzureCredential. */
  accountUrl: string | undefined;
  /** A connection string with an account key instead (development, Azurite). It is a secret: pass it from a secret store. */
  connectionString: string | undefined;
  container: string;
  prefix: string;
}

export interface AuthSettings {
  /** AUTH_ENABLED; unset: on wherever the API listens beyond loopback (listenPolicy). */
  enabled: boolean | undefined;
  /** The `aud` every access token must carry (the FHIR base URL). */
  audience: string;
  /** External authorization servers whose tokens are accepted, with their JWKS URLs. */
  trustedIssuers: Array<{ issuer: string; jwksUrl: string }>;
  /** Lifetime of tokens from the built-in token endpoint. */
  tokenLifetimeSeconds: number;
}

export interface TemporalTlsSettings {
  /** TLS to the Temporal frontend (on when an API key or a client certificate is given). */
  enabled: boolean;
  /** A Temporal Cloud API key, sent as a bearer token. */
  apiKey: string | undefined;
  /** mTLS: the client certificate and key files (PEM), both or neither. */
  clientCertFile: string | undefined;
  clientKeyFile: string | undefined;
  /** A CA bundle (PEM) for a server certificate the system does not trust. */
  serverCaFile: string | undefined;
}

/** Export tuning from the environment; it travels in each export workflow's input. */
export type ExportSettings = ExportTuning;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function text(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === '' ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function httpUrl(env: Env, name: string, fallback: string): string {
  const raw = text(env, name) ?? fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be an absolute http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(name, `must use http or https, got "${raw}"`);
  }
  if (url.search || url.hash) throw new ConfigError(name, `must not carry a query or fragment, got "${raw}"`);
  return raw.replace(/\/+$/, '');
}

function postgresUrl(env: Env, name: string, fallback: string): string {
  const raw = text(env, name) ?? fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be a postgres:// URL, got "${raw}"`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(name, `must be a postgres:// URL, got "${raw}"`);
  }
  return raw;
}

function basePath(env: Env, name: string, fallback: string): string {
  const raw = text(env, name) ?? fallback;
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(raw)) {
    throw new ConfigError(name, `must be a path like /fhir (segments of letters, digits, . _ ~ -), got "${raw}"`);
  }
  return raw;
}

function hostPort(env: Env, name: string): string | undefined {
  const raw = text(env, name);
  if (raw === undefined) return undefined;
  if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(raw) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(raw)) {
    throw new ConfigError(name, `must be host:port, got "${raw}"`);
  }
  return raw;
}

/** fake-gcs-server is reached through `apiEndpoint`; accept the env var with or without `/storage/v1`. */
function emulatorEndpoint(env: Env, name: string): string | undefined {
  const raw = text(env, name);
  if (raw === undefined) return undefined;
  const withScheme = /^https?:\/\//.test(raw) ? raw : `http://${raw}`;
  return httpUrl({ [name]: withScheme.replace(/\/storage\/v1\/?$/, '') }, name, '');
}

/** A key prefix: path segments bulkflow's own keys could be, ending in `/`; empty when unset. */
function keyPrefix(env: Env, name: string): string {
  const raw = text(env, name);
  if (raw === undefined) return '';
  const prefix = raw.endsWith('/') ? raw : `${raw}/`;
  if (!/^([A-Za-z0-9_.=-]+\/)+$/.test(prefix) || prefix.split('/').some((s) => s === '.' || s === '..')) {
    throw new ConfigError(name, `must be folder names of letters, digits and . _ = - separated by / (got "${raw}")`);
  }
  return prefix;
}

function s3Settings(env: Env): S3Settings {
  const bucket = text(env, 'S3_BUCKET');
  if (bucket === undefined) throw new ConfigError('S3_BUCKET', 'must be set when OUTPUT_BACKEND=s3');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new ConfigError('S3_BUCKET', `is not a valid bucket name: "${bucket}"`);
  return {
    bucket,
    region: text(env, 'S3_REGION'),
    endpoint: text(env, 'S3_ENDPOINT') === undefined ? undefined : httpUrl(env, 'S3_ENDPOINT', ''),
    forcePathStyle: oneOf(env, 'S3_FORCE_PATH_STYLE', ['true', 'false'] as const, 'false') === 'true',
    prefix: keyPrefix(env, 'S3_PREFIX'),
    requestTimeoutMs: integer(env, 'S3_REQUEST_TIMEOUT_MS', 60_000, 100, 3_600_000),
  };
}

function azureSettings(env: Env): AzureSettings {
  const container = text(env, 'AZURE_STORAGE_CONTAINER');
  if (container === undefined) throw new ConfigError('AZURE_STORAGE_CONTAINER', 'must be set when OUTPUT_BACKEND=azure');
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(container)) throw new ConfigError('AZURE_STORAGE_CONTAINER', `is not a valid container name: "${container}"`);
  const connectionString = text(env, 'AZURE_STORAGE_CONNECTION_STRING');
  const accountUrl = text(env, 'AZURE_STORAGE_ACCOUNT_URL') === undefined ? undefined : httpUrl(env, 'AZURE_STORAGE_ACCOUNT_URL', '');
  if ((connectionString === undefined) === (accountUrl === undefined)) {
    throw new ConfigError('AZURE_STORAGE_ACCOUNT_URL', 'or AZURE_STORAGE_CONNECTION_STRING must be set when OUTPUT_BACKEND=azure, not both: the URL signs in with DefaultAzureCredential, the connection string with its account key');
  }
  return { accountUrl, connectionString, container, prefix: keyPrefix(env, 'AZURE_STORAGE_PREFIX') };
}

export function loadConfig(env: Env = process.env): Config {
  const port = integer(env, 'PORT', 8080, 0, 65535);
  const dataDir = path.resolve(text(env, 'DATA_DIR') ?? 'data');
  const outputBackend = oneOf(env, 'OUTPUT_BACKEND', ['local', 'gcs', 's3', 'azure'] as const, 'local');
  const gcsBucket = text(env, 'GCS_BUCKET');
  if (outputBackend === 'gcs' && gcsBucket === undefined) {
    throw new ConfigError('GCS_BUCKET', 'must be set when OUTPUT_BACKEND=gcs');
  }
  const downloadsRequireToken = oneOf(env, 'DOWNLOADS_REQUIRE_TOKEN', ['true', 'false'] as const, 'true') === 'true';
  if (!downloadsRequireToken && outputBackend === 'local') {
    throw new ConfigError('DOWNLOADS_REQUIRE_TOKEN', '=false needs OUTPUT_BACKEND=gcs, s3 or azure: only a bucket can hand out signed URLs (local files are served by the API, with a token)');
  }
  const baseUrl = httpUrl(env, 'BASE_URL', `http://localhost:${port}`);
  const fhirBasePath = basePath(env, 'FHIR_BASE_PATH', '/fhir');
  const retryAfterMin = integer(env, 'STATUS_RETRY_AFTER_SECONDS', 2, 1, 120);
  const retryAfterMax = integer(env, 'STATUS_RETRY_AFTER_MAX_SECONDS', 30, 1, 3600);
  if (retryAfterMax < retryAfterMin) {
    throw new ConfigError('STATUS_RETRY_AFTER_MAX_SECONDS', `(${retryAfterMax}) is less than STATUS_RETRY_AFTER_SECONDS (${retryAfterMin})`);
  }
  if (gcsBucket !== undefined && !/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(gcsBucket)) {
    throw new ConfigError('GCS_BUCKET', `is not a valid bucket name: "${gcsBucket}"`);
  }
  return {
    port,
    host: text(env, 'HOST'),
    httpKeepAliveTimeoutSeconds: integer(env, 'HTTP_KEEP_ALIVE_TIMEOUT_SECONDS', 65, 1, 3600),
    baseUrl,
    fhirBasePath,
    trustedProxies: trustedProxies(env),
    tokenAudiences: urlList(env, 'AUTH_TOKEN_AUDIENCES'),
    databaseUrl: postgresUrl(env, 'DATABASE_URL', 'postgres://127.0.0.1:5432/bulkflow'),
    temporalAddress: hostPort(env, 'TEMPORAL_ADDRESS'),
    temporalNamespace: text(env, 'TEMPORAL_NAMESPACE') ?? 'default',
    temporalTaskQueue: text(env, 'TEMPORAL_TASK_QUEUE') ?? 'bulkflow-export',
    temporalRegisterSearchAttributes: oneOf(env, 'TEMPORAL_REGISTER_SEARCH_ATTRIBUTES', ['true', 'false'] as const, 'true') === 'true',
    temporalPayloadKeys: payloadKeys(env, 'TEMPORAL_PAYLOAD_KEYS'),
    codecCorsOrigins: urlList(env, 'CODEC_CORS_ORIGINS').map((url) => new URL(url).origin),
    temporalTls: temporalTls(env),
    temporalCliPath: text(env, 'TEMPORAL_CLI_PATH'),
    devTemporal: oneOf(env, 'DEV_TEMPORAL', ['dev-server', 'server'] as const, 'dev-server'),
    devTemporalPort: integer(env, 'DEV_TEMPORAL_PORT', 7233, 1, 65535),
    devTemporalUiPort: integer(env, 'DEV_TEMPORAL_UI_PORT', 8233, 1, 65535),
    devSeedPatients: integer(env, 'DEV_SEED_PATIENTS', 25, 0, 100_000),
    dataDir,
    outputBackend,
    outputDir: path.resolve(text(env, 'OUTPUT_DIR') ?? path.join(dataDir, 'exports')),
    gcsBucket,
    gcsProjectId: text(env, 'GCS_PROJECT_ID'),
    gcsApiEndpoint: emulatorEndpoint(env, 'STORAGE_EMULATOR_HOST'),
    gcsSigningKeyFile: text(env, 'GCS_SIGNING_KEY_FILE'),
    gcsRequestTimeoutMs: integer(env, 'GCS_REQUEST_TIMEOUT_MS', 60_000, 100, 3_600_000),
    s3: outputBackend === 's3' ? s3Settings(env) : undefined,
    azure: outputBackend === 'azure' ? azureSettings(env) : undefined,
    downloadsRequireToken,
    signedUrlTtlSeconds: integer(env, 'SIGNED_URL_TTL_SECONDS', 300, 10, 7 * 86400),
    workerMaxConcurrentActivities: integer(env, 'WORKER_MAX_CONCURRENT_ACTIVITIES', 4, 1, 256),
    workerMaxConcurrentPartitions: integer(env, 'WORKER_MAX_CONCURRENT_PARTITIONS', 4, 1, 256),
    workerShutdownGraceSeconds: integer(env, 'WORKER_SHUTDOWN_GRACE_SECONDS', 10, 0, 3600),
    export: {
      partitionSize: integer(env, 'EXPORT_PARTITION_SIZE', 50_000, 1, 100_000_000),
      maxParallelPartitions: integer(env, 'EXPORT_PARALLELISM', 2, 1, 64),
      maxPartResources: integer(env, 'EXPORT_PART_MAX_RESOURCES', 100_000, 1, 100_000_000),
      maxPartBytes: integer(env, 'EXPORT_PART_MAX_BYTES', 100 * 1024 * 1024, 1024, 5 * 1024 ** 3),
      retentionMs: integer(env, 'EXPORT_RETENTION_SECONDS', 3600, 1, 30 * 86400) * 1000,
      heartbeatTimeoutMs: integer(env, 'EXPORT_HEARTBEAT_TIMEOUT_SECONDS', 30, 1, 3600) * 1000,
      manifestPageFiles: integer(env, 'EXPORT_MANIFEST_PAGE_FILES', 100, 1, 10_000),
    },
    statusRetryAfterSeconds: retryAfterMin,
    statusRetryAfterMaxSeconds: retryAfterMax,
    exportResultPattern: oneOf(env, 'EXPORT_RESULT_PATTERN', ['manifest', 'see-other'] as const, 'manifest'),
    asyncSyncWaitMs: integer(env, 'ASYNC_SYNC_WAIT_MS', 1000, 0, 60_000),
    sql: sqlLimits(env, dataDir),
    bulkSubmit: { submitters: submitters(env, 'BULK_SUBMITTERS_FILE'), maxParallelFiles: integer(env, 'BULK_SUBMIT_PARALLEL_FILES', 4, 1, 64) },
    tenantHeader: text(env, 'TENANT_HEADER'),
    tenantMaxRunningExports: integer(env, 'TENANT_MAX_RUNNING_EXPORTS', 10, 1, 10_000),
    maxResourceBytes: integer(env, 'MAX_RESOURCE_BYTES', DEFAULT_MAX_RESOURCE_BYTES, 1024, 512 * 1024 ** 2),
    auth: {
      enabled: env.AUTH_ENABLED === undefined || env.AUTH_ENABLED === '' ? undefined : oneOf(env, 'AUTH_ENABLED', ['true', 'false'] as const, 'true') === 'true',
      audience: text(env, 'AUTH_AUDIENCE') ?? `${baseUrl}${fhirBasePath}`,
      trustedIssuers: trustedIssuers(env, 'AUTH_TRUSTED_ISSUERS'),
      tokenLifetimeSeconds: integer(env, 'AUTH_TOKEN_LIFETIME_SECONDS', 300, 30, 3600),
    },
    statusPollToleranceMs: integer(env, 'STATUS_POLL_TOLERANCE_MS', 1000, 0, 120_000),
    logLevel: oneOf(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const, 'info'),
    logFormat: oneOf(env, 'LOG_FORMAT', ['json', 'pretty'] as const, 'json'),
    metricsHost: text(env, 'METRICS_HOST') ?? '127.0.0.1',
    metricsPort: env.METRICS_PORT === undefined || env.METRICS_PORT === '' ? undefined : integer(env, 'METRICS_PORT', 0, 0, 65535),
  };
}

/** The SQL engine's limits: `$sql-run` answers while the client waits, an export's SQL subject may run long and big. */
function submitters(env: Env, name: string): Submitter[] {
  const file = text(env, name);
  if (file === undefined) return [];
  try {
    return loadSubmitters(file);
  } catch (err) {
    if (err instanceof SubmitterError) throw new ConfigError(name, err.message);
    throw err;
  }
}

function sqlLimits(env: Env, dataDir: string): Config['sql'] {
  const shared = {
    threads: integer(env, 'SQL_THREADS', DEFAULT_SQL_LIMITS.threads, 1, 64),
    memoryLimit: `${integer(env, 'SQL_MEMORY_LIMIT_MB', Number.parseInt(DEFAULT_SQL_LIMITS.memoryLimit, 10), 16, 1024 * 1024)}MB`,
    maxTableRows: integer(env, 'SQL_MAX_TABLE_ROWS', DEFAULT_SQL_LIMITS.maxTableRows, 1, Number.MAX_SAFE_INTEGER),
    spillDirectory: path.join(dataDir, 'sql-spill'),
    spillLimitMb: integer(env, 'SQL_SPILL_LIMIT_MB', DEFAULT_SQL_LIMITS.spillLimitMb, 0, 1024 * 1024 * 1024),
  };
  const perProcess = integer(env, 'SQL_MAX_CONCURRENT', DEFAULT_SQL_ADMISSION.perProcess, 1, 1024);
  return {
    run: {
      ...shared,
      timeoutMs: integer(env, 'SQL_TIMEOUT_SECONDS', DEFAULT_SQL_LIMITS.timeoutMs / 1000, 1, 86_400) * 1000,
      maxResultRows: integer(env, 'SQL_RUN_MAX_ROWS', DEFAULT_SQL_LIMITS.maxResultRows, 1, Number.MAX_SAFE_INTEGER),
      maxResultBytes: integer(env, 'SQL_RUN_MAX_RESULT_MB', DEFAULT_SQL_LIMITS.maxResultBytes / (1024 * 1024), 1, 1024 * 1024) * 1024 * 1024,
    },
    export: {
      ...shared,
      timeoutMs: integer(env, 'SQL_EXPORT_TIMEOUT_SECONDS', DEFAULT_SQL_EXPORT_LIMITS.timeoutMs / 1000, 1, 7 * 86_400) * 1000,
      maxResultRows: integer(env, 'SQL_EXPORT_MAX_ROWS', DEFAULT_SQL_EXPORT_LIMITS.maxResultRows, 1, Number.MAX_SAFE_INTEGER),
      maxResultBytes: DEFAULT_SQL_EXPORT_LIMITS.maxResultBytes,
    },
    admission: { perProcess, perTenant: integer(env, 'SQL_MAX_CONCURRENT_PER_TENANT', Math.min(DEFAULT_SQL_ADMISSION.perTenant, perProcess), 1, perProcess) },
  };
}

function temporalTls(env: Env): TemporalTlsSettings {
  const apiKey = text(env, 'TEMPORAL_API_KEY');
  const clientCertFile = text(env, 'TEMPORAL_TLS_CERT_FILE');
  const clientKeyFile = text(env, 'TEMPORAL_TLS_KEY_FILE');
  if ((clientCertFile === undefined) !== (clientKeyFile === undefined)) {
    throw new ConfigError(clientCertFile === undefined ? 'TEMPORAL_TLS_CERT_FILE' : 'TEMPORAL_TLS_KEY_FILE', 'must be set together with the other of TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE');
  }
  const implied = apiKey !== undefined || clientCertFile !== undefined;
  const enabled = oneOf(env, 'TEMPORAL_TLS', ['true', 'false'] as const, implied ? 'true' : 'false') === 'true';
  if (implied && !enabled) throw new ConfigError('TEMPORAL_TLS', '=false cannot be combined with TEMPORAL_API_KEY or client certificates, which need TLS');
  return { enabled, apiKey, clientCertFile, clientKeyFile, serverCaFile: text(env, 'TEMPORAL_TLS_CA_FILE') };
}

/** TRUST_FORWARDED_HEADERS (default false) and TRUSTED_PROXIES: both or neither, so no half-set trust goes unnoticed. */
function trustedProxies(env: Env): string[] {
  const trust = oneOf(env, 'TRUST_FORWARDED_HEADERS', ['true', 'false'] as const, 'false') === 'true';
  const raw = text(env, 'TRUSTED_PROXIES');
  const entries = (raw ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
  for (const entry of entries) {
    if (!parseProxyEntry(entry)) throw new ConfigError('TRUSTED_PROXIES', `must be IP addresses or CIDRs, comma-separated, got "${entry}"`);
  }
  if (trust && entries.length === 0) throw new ConfigError('TRUSTED_PROXIES', 'must name the proxies (addresses or CIDRs) whose forwarded headers TRUST_FORWARDED_HEADERS=true believes');
  if (!trust && entries.length > 0) throw new ConfigError('TRUSTED_PROXIES', 'has no effect unless TRUST_FORWARDED_HEADERS=true');
  return entries;
}

/** `id:base64key` pairs, comma-separated; each key 32 bytes (`openssl rand -base64 32`). */
function payloadKeys(env: Env, name: string): PayloadKey[] | undefined {
  const value = text(env, name);
  if (!value) return undefined;
  const keys = value.split(',').map((pair) => {
    const at = pair.indexOf(':');
    const id = pair.slice(0, at).trim();
    const encoded = pair.slice(at + 1).trim();
    const key = Buffer.from(encoded, 'base64');
    if (at <= 0 || !/^[A-Za-z0-9._-]{1,64}$/.test(id) || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || key.length !== 32) {
      throw new ConfigError(name, `must be id:key pairs, comma-separated, each key 32 bytes in base64 (openssl rand -base64 32), got an entry${id ? ` with id "${id}"` : ' without an id'} that is not`);
    }
    return { id, key };
  });
  if (new Set(keys.map((k) => k.id)).size !== keys.length) throw new ConfigError(name, 'names a key id twice');
  return keys;
}

/** Comma-separated absolute http(s) URLs. */
function urlList(env: Env, name: string): string[] {
  const value = text(env, name);
  if (!value) return [];
  return value.split(',').map((item) => httpUrl({ [name]: item.trim() }, name, ''));
}

/** `issuer=jwksUrl` pairs, comma-separated (issuers are URLs, so they hold no commas). */
function trustedIssuers(env: Env, name: string): Array<{ issuer: string; jwksUrl: string }> {
  const value = text(env, name);
  if (!value) return [];
  return value.split(',').map((pair) => {
    const at = pair.indexOf('=');
    const [issuer, jwksUrl] = [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
    if (at <= 0 || !/^https?:\/\/\S+$/.test(issuer) || !/^https?:\/\/\S+$/.test(jwksUrl)) {
      throw new ConfigError(name, `must be issuer=jwksUrl pairs of http(s) URLs, comma-separated, got "${pair}"`);
    }
    return { issuer, jwksUrl };
  });
}
