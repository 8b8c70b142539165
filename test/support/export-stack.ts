/**
 * The export path for one test file, all real: PostgreSQL store, Temporal dev server, a worker
 * running the real workflow and activities on its own task queue, the Koa API on a free port,
 * and a local or fake-gcs-server output store.
 */
import { Submitters, type Submitter } from '../../src/bulk-submit/submitters';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { Client, Connection } from '@temporalio/client';
import { decodeOptionalFailureToOptionalError } from '@temporalio/common/lib/internal-non-workflow';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { Pool } from 'pg';
import type { Activities } from '../../activities';
import { createExportWorker } from '../../src/temporal/worker';
import type { ExportSettings, ResultPattern } from '../../src/config';
import { createApp } from '../../src/http/app';
import type { DeclaredRoute } from '../../src/http/access';
import { createLogger } from '../../src/log';
import { GcsOutputStore } from '../../src/output/gcs-output-store';
import { LocalOutputStore } from '../../src/output/local-output-store';
import type { OutputStore } from '../../src/output/output-store';
import { findFreePort } from '../../src/process/free-port';
import { ResourceStore } from '../../src/store/resource-store';
import { AccessTokens } from '../../src/auth/access-tokens';
import { ClientRegistry } from '../../src/auth/clients';
import { loadSigningKey } from '../../src/auth/signing-key';
import { testEnvironment, testS3Client } from '../harness/environment';
import { S3OutputStore } from '../../src/output/s3-output-store';
import { AzureOutputStore } from '../../src/output/azure-output-store';
import { BlobServiceClient } from '@azure/storage-blob';
import { loadPayloadKeys } from '../../src/temporal/payload-keys';
import { encryptingDataConverter } from '../../src/temporal/data-converter';
import { EncryptionCodec, type PayloadKey } from '../../src/temporal/payload-codec';
import { migratedPool, uniqueTenant } from './database';
import { listen } from './http';
import { DEFAULT_SQL_ADMISSION, DEFAULT_SQL_EXPORT_LIMITS, DEFAULT_SQL_LIMITS, type EngineLimits, type SqlAdmissionLimits } from '../../src/sql/engine-types';

Runtime.install({ logger: new DefaultLogger('WARN') });

export const testExportSettings: ExportSettings = {
  partitionSize: 50_000,
  maxParallelPartitions: 2,
  maxPartResources: 100_000,
  maxPartBytes: 100 * 1024 * 1024,
  retentionMs: 3_600_000,
  heartbeatTimeoutMs: 5_000,
  manifestPageFiles: 100,
};

export interface ExportStack {
  url: string;
  fhir: string;
  pool: Pool;
  store: ResourceStore;
  output: OutputStore;
  /** The local output directory (local backend only). */
  outputDir?: string;
  client: Client;
  taskQueue: string;
  /** Every route the app serves, with its declared access. */
  routes: DeclaredRoute[];
  /** The keys that encrypt the stack's payloads (the test database's generated key). */
  payloadKeys: PayloadKey[];
  /** Starts a worker on the stack's task queue; `wrap` may decorate the real activities. */
  startWorker(wrap?: (real: Activities) => Activities, options?: { unencrypted?: boolean; workflowBundleCodePath?: string }): Promise<{ stop(): Promise<void> }>;
  close(): Promise<void>;
}

export async function startExportStack(
  options: {
    backend?: 'local' | 'gcs' | 's3' | 'azure';
    settings?: Partial<ExportSettings>;
    /** The SQL engine's limits, over the defaults. */
    sql?: { run?: Partial<EngineLimits>; export?: Partial<EngineLimits>; admission?: Partial<SqlAdmissionLimits> };
    retryAfterSeconds?: number;
    retryAfterMaxSeconds?: number;
    pollToleranceMs?: number;
    resultPattern?: ResultPattern;
    asyncSyncWaitMs?: number;
    /** SMART Backend Services authorization on, with the built-in token endpoint. */
    auth?: boolean;
    /** External authorization servers whose tokens are accepted too. */
    trustedIssuers?: Array<{ issuer: string; jwksUrl: string }>;
    tenantHeader?: string;
    /** TRUSTED_PROXIES (with TRUST_FORWARDED_HEADERS=true): peers whose forwarded headers are believed. */
    trustedProxies?: string[];
    /** MAX_RESOURCE_BYTES of the app. */
    maxResourceBytes?: number;
    maxRunningExports?: number;
    /** GCS only: the bucket (default: the run's test bucket). */
    gcsBucket?: string;
    /** Manifests list signed URLs valid this long (GCS: the service-account key is generated; S3 and Azure sign with the server's keys). */
    signedUrlTtlSeconds?: number;
    /** The store tenant (default: a new one); another stack's, to run its data with other activities. */
    tenant?: string;
    /** A migrated pool on another database (default: the run's test database); closed with the stack. */
    pool?: Pool;
    /** Web UI origins whose browsers may call the codec server. */
    codecCorsOrigins?: string[];
    /** The payload keys (default: the test database's generated key). */
    payloadKeys?: PayloadKey[];
    /** The API's client sends payloads in clear, as releases before payload encryption did. */
    unencryptedClient?: boolean;
    /** Providers `$bulk-submit` accepts (BULK_SUBMITTERS_FILE's entries). */
    submitters?: Submitter[];
  } = {},
): Promise<ExportStack> {
  const pool = options.pool ?? (await migratedPool(8));
  const tenant = options.tenant ?? uniqueTenant('export');
  const store = new ResourceStore(pool, tenant);
  const taskQueue = `export-test-${randomUUID()}`;
  let outputDir: string | undefined;
  let output: OutputStore;
  if (options.backend === 'gcs') {
    const storage = new Storage({
      apiEndpoint: testEnvironment.gcsEndpoint,
      projectId: 'bulkflow-test',
      ...(options.signedUrlTtlSeconds ? { credentials: testServiceAccount() } : {}),
    });
    output = new GcsOutputStore(storage, options.gcsBucket ?? testEnvironment.gcsBucket, `${tenant}/`, testEnvironment.gcsEndpoint);
  } else if (options.backend === 's3') {
    output = new S3OutputStore(testS3Client(), testEnvironment.s3Bucket, `${tenant}/`);
  } else if (options.backend === 'azure') {
    output = new AzureOutputStore(BlobServiceClient.fromConnectionString(testEnvironment.azureConnectionString), testEnvironment.azureContainer, `${tenant}/`);
  } else {
    outputDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-export-'));
    output = new LocalOutputStore(outputDir);
  }
  const connection = await Connection.connect({ address: testEnvironment.temporalAddress });
  const payloadKeys = await loadPayloadKeys(pool, options.payloadKeys);
  const client = new Client({ connection, namespace: testEnvironment.temporalNamespace, ...(options.unencryptedClient ? {} : { dataConverter: encryptingDataConverter(payloadKeys) }) });
  const port = await findFreePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const auth = options.auth
    ? {
        registry: new ClientRegistry(pool),
        tokens: new AccessTokens({ issuer: `${baseUrl}/auth`, audience: `${baseUrl}/fhir`, key: await loadSigningKey(pool), lifetimeSeconds: 300, trusted: options.trustedIssuers ?? [] }),
      }
    : undefined;
  const sqlLimits = { run: { ...DEFAULT_SQL_LIMITS, ...options.sql?.run }, export: { ...DEFAULT_SQL_EXPORT_LIMITS, ...options.sql?.export }, admission: { ...DEFAULT_SQL_ADMISSION, ...options.sql?.admission } };
  const app = createApp({
    config: { baseUrl, fhirBasePath: '/fhir', tenantHeader: options.tenantHeader, trustedProxies: options.trustedProxies, maxResourceBytes: options.maxResourceBytes, sql: sqlLimits, bulkSubmit: { submitters: options.submitters ?? [], maxParallelFiles: 4 } },
    auth,
    codec: { codec: new EncryptionCodec(payloadKeys), corsOrigins: options.codecCorsOrigins ?? [] },
    log: createLogger('warn'),
    store,
    bulkExport: {
      client,
      taskQueue,
      output,
      exportSettings: { ...testExportSettings, ...options.settings },
      retryAfterSeconds: options.retryAfterSeconds ?? 1,
      retryAfterMaxSeconds: options.retryAfterMaxSeconds,
      pollToleranceMs: options.pollToleranceMs,
      resultPattern: options.resultPattern,
      asyncSyncWaitMs: options.asyncSyncWaitMs,
      maxRunningExports: options.maxRunningExports,
      signedUrlTtlSeconds: options.signedUrlTtlSeconds,
    },
  });
  const server = await listen(app, port);
  const workers: Array<{ stop(): Promise<void> }> = [];

  return {
    url: baseUrl,
    fhir: `${baseUrl}/fhir`,
    pool,
    store,
    output,
    outputDir,
    client,
    taskQueue,
    routes: app.routes,
    payloadKeys,
    async startWorker(wrap = (real) => real, workerOptions = {}) {
      const nativeConnection = await NativeConnection.connect({ address: testEnvironment.temporalAddress });
      // The production worker factory, on this stack's task queue.
      const worker = await createExportWorker({
        connection: nativeConnection,
        config: { temporalNamespace: testEnvironment.temporalNamespace, temporalTaskQueue: taskQueue, workerMaxConcurrentActivities: 4 },
        dependencies: { pool, output, sqlLimits: sqlLimits.export, submitters: new Submitters(options.submitters ?? []) },
        payloadKeys: workerOptions.unencrypted ? 'unencrypted' : payloadKeys,
        workflowBundleCodePath: workerOptions.workflowBundleCodePath,
        wrapActivities: wrap,
      });
      const running = worker.run();
      let stopped: Promise<void> | undefined;
      const handle = {
        stop() {
          stopped ??= (async () => {
            if (worker.getState() === 'RUNNING') worker.shutdown();
            await running.catch(() => undefined);
            await nativeConnection.close();
          })();
          return stopped;
        },
      };
      workers.push(handle);
      return handle;
    },
    async close() {
      for (const w of workers) await w.stop();
      await server.close();
      await connection.close();
      await pool.end();
      if (outputDir) rmSync(outputDir, { recursive: true, force: true });
    },
  };
}

export const kickoffHeaders = { Accept: 'application/fhir+json', Prefer: 'respond-async' };

/** GET kick-off; returns the status URL (asserting the 202). */
export async function kickOff(stack: ExportStack, query = '', headers: Record<string, string> = kickoffHeaders): Promise<string> {
  const res = await fetch(`${stack.fhir}/$export${query}`, { headers });
  if (res.status !== 202) throw new Error(`kick-off answered ${res.status}: ${await res.text()}`);
  const location = res.headers.get('content-location');
  if (!location || !/^https?:\/\//.test(location)) throw new Error(`no absolute Content-Location: ${location}`);
  return location;
}

export interface CompletedExport {
  response: Response;
  manifest: {
    transactionTime: string;
    request: string;
    requiresAccessToken: boolean;
    output: Array<{ type: string; url: string; count: number }>;
    deleted?: Array<{ type: string; url: string; count: number }>;
    error: Array<{ type: string; url: string; count: number }>;
  };
}

/** Polls the status URL, honouring Retry-After loosely, until it answers something other than 202. */
export async function pollUntilDone(statusUrl: string, timeoutMs = 60_000): Promise<CompletedExport> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await fetch(statusUrl, { headers: { Accept: 'application/json' } });
    if (res.status !== 202) {
      if (res.status !== 200) throw new Error(`status answered ${res.status}: ${await res.text()}`);
      return { response: res, manifest: (await res.json()) as CompletedExport['manifest'] };
    }
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`export at ${statusUrl} did not finish within ${timeoutMs} ms`);
}

/** A failure's message as a client with the codec reads it (raw, failure texts are encoded and encrypted). */
export async function failureMessage(client: Client, failure: Parameters<typeof decodeOptionalFailureToOptionalError>[1]): Promise<string | undefined> {
  return (await decodeOptionalFailureToOptionalError(client.options.loadedDataConverter, failure).catch(() => undefined))?.message ?? failure?.message ?? undefined;
}

/** What an export's workflow is waiting on, for a failure's message: its status, pending activities and latest events. */
export async function describeExport(client: Client, statusUrl: string): Promise<string> {
  try {
    const handle = client.workflow.getHandle(new URL(statusUrl).pathname.split('/').pop()!);
    const { status, raw } = await handle.describe();
    const pending = await Promise.all(
      (raw.pendingActivities ?? []).map(async (a) => ({ type: a.activityType?.name, state: a.state, attempt: a.attempt, lastFailure: await failureMessage(client, a.lastFailure), lastWorker: a.lastWorkerIdentity })),
    );
    const events = (await handle.fetchHistory()).events ?? [];
    const latest = events.slice(-5).map((e) => `${e.eventId} ${e.eventType} ${e.eventTime?.seconds}`);
    return `workflow ${status.name}, pending activities ${JSON.stringify(pending)}, ${events.length} events, latest ${JSON.stringify(latest)}`;
  } catch (err) {
    return `the workflow could not be described: ${String(err)}`;
  }
}

/** Polls until the export is done; on a timeout, says what its workflow waits on. */
export async function awaitExport(client: Client, statusUrl: string, timeoutMs: number): Promise<CompletedExport> {
  return pollUntilDone(statusUrl, timeoutMs).catch(async (err: Error) => Promise.reject(new Error(`${err.message}; ${await describeExport(client, statusUrl)}`)));
}

/** Downloads every output file; returns the resources as `Type/id/versionId` keys (duplicates kept). */
export async function downloadAll(manifest: CompletedExport['manifest']): Promise<{ keys: string[]; byFile: Array<{ type: string; lines: unknown[] }> }> {
  const keys: string[] = [];
  const byFile: Array<{ type: string; lines: unknown[] }> = [];
  for (const item of manifest.output) {
    const res = await fetch(item.url);
    if (res.status !== 200) throw new Error(`download ${item.url} answered ${res.status}`);
    const text = await res.text();
    const lines = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { resourceType: string; id: string; meta?: { versionId: string } });
    byFile.push({ type: item.type, lines });
    // A block header (organizeOutputBy) is a Parameters without meta: not a stored resource.
    for (const r of lines) if (r.meta) keys.push(`${r.resourceType}/${r.id}/${r.meta.versionId}`);
  }
  return { keys, byFile };
}

/** Downloads the manifest's `deleted` files; returns the deleted resources as `Type/id` (asserting the Bundle shape and counts). */
export async function downloadDeleted(manifest: CompletedExport['manifest']): Promise<string[]> {
  const deleted: string[] = [];
  for (const item of manifest.deleted ?? []) {
    if (item.type !== 'Bundle') throw new Error(`deleted item of type ${item.type}`);
    const text = await (await fetch(item.url)).text();
    const bundles = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as {
      resourceType: string;
      type: string;
      entry: Array<{ request: { method: string; url: string } }>;
    });
    if (bundles.length !== item.count) throw new Error(`${item.url} holds ${bundles.length} lines, manifest says ${item.count}`);
    for (const bundle of bundles) {
      if (bundle.resourceType !== 'Bundle' || bundle.type !== 'transaction') throw new Error(`not a transaction Bundle: ${JSON.stringify(bundle)}`);
      for (const entry of bundle.entry) {
        if (entry.request.method !== 'DELETE') throw new Error(`not a DELETE entry: ${JSON.stringify(entry)}`);
        deleted.push(entry.request.url);
      }
    }
  }
  return deleted;
}

/** A service-account key made for the test: what signs V4 URLs (the emulator does not check them). */
/** One key pair per test process: tests verify signed URLs with its public half. */
let serviceAccountKeys: ReturnType<typeof generateKeyPairSync> | undefined;

export function testServiceAccount(): { client_email: string; private_key: string } {
  serviceAccountKeys ??= generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { client_email: 'bulkflow-test@example.iam.gserviceaccount.com', private_key: serviceAccountKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** The public half of testServiceAccount()'s key: what Cloud Storage checks signed URLs with. */
export function testServiceAccountPublicKey(): KeyObject {
  testServiceAccount();
  return serviceAccountKeys!.publicKey;
}
