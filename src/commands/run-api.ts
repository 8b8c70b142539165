import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config';
import { createOutputStore } from '../output/create-output-store';
import { createPool } from '../store/database';
import { migrate } from '../store/migrate';
import { ResourceStore } from '../store/resource-store';
import { createApp } from '../http/app';
import { ensureSearchAttributes } from '../temporal/search-attribute-registry';
import type { Logger } from '../log';
import { apiMetrics, type ApiMetrics } from '../metrics/metrics';
import { AccessTokens } from '../auth/access-tokens';
import { ClientRegistry } from '../auth/clients';
import { loadSigningKey } from '../auth/signing-key';
import { temporalConnectionOptions } from '../temporal/connection-options';
import { loadPayloadKeys } from '../temporal/payload-keys';
import { encryptingDataConverter } from '../temporal/data-converter';
import { EncryptionCodec } from '../temporal/payload-codec';
import { clientTracingInterceptors } from '../temporal/tracing-interceptors';
import { listenPolicy } from './listen-policy';

export interface RunningApi {
  url: string;
  metrics: ApiMetrics;
  /** Stops accepting connections and waits for in-flight requests. */
  close(): Promise<void>;
}

export async function runApi(config: Config, temporalAddress: string, log: Logger, command: 'serve' | 'dev'): Promise<RunningApi> {
  const policy = listenPolicy(config, command);
  const connection = await Connection.connect(temporalConnectionOptions(temporalAddress, config.temporalTls));
  // Before serving: the tenant cap queries these attributes, so without them every kick-off would fail.
  await ensureSearchAttributes(connection, config.temporalNamespace, { register: config.temporalRegisterSearchAttributes }).catch(async (err) => {
    await connection.close();
    throw err;
  });
  const pool = createPool(config.databaseUrl);
  await migrate(pool);
  const payloadKeys = await loadPayloadKeys(pool, config.temporalPayloadKeys);
  const client = new Client({ connection, namespace: config.temporalNamespace, interceptors: clientTracingInterceptors(), dataConverter: encryptingDataConverter(payloadKeys) });
  const auth = policy.authEnabled
    ? {
        registry: new ClientRegistry(pool),
        tokens: new AccessTokens({
          issuer: `${config.baseUrl}/auth`,
          audience: config.auth.audience,
          key: await loadSigningKey(pool),
          lifetimeSeconds: config.auth.tokenLifetimeSeconds,
          trusted: config.auth.trustedIssuers,
        }),
      }
    : undefined;
  const metrics = apiMetrics();
  const app = createApp({
    config,
    openToNetwork: policy.openToNetwork,
    log,
    metrics,
    auth,
    codec: { codec: new EncryptionCodec(payloadKeys), corsOrigins: config.codecCorsOrigins },
    store: new ResourceStore(pool),
    bulkExport: {
      client,
      taskQueue: config.temporalTaskQueue,
      output: createOutputStore(config),
      exportSettings: config.export,
      retryAfterSeconds: config.statusRetryAfterSeconds,
      retryAfterMaxSeconds: config.statusRetryAfterMaxSeconds,
      resultPattern: config.exportResultPattern,
      asyncSyncWaitMs: config.asyncSyncWaitMs,
      maxRunningExports: config.tenantMaxRunningExports,
      signedUrlTtlSeconds: config.downloadsRequireToken ? undefined : config.signedUrlTtlSeconds,
      pollToleranceMs: config.statusPollToleranceMs,
    },
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.port, policy.host, () => resolve(s));
    s.on('error', reject);
  });
  // Node closes an idle connection after 5 s. A client (or a load balancer) that reuses it at
  // that moment gets "other side closed" instead of an answer; so idle connections stay open
  // longer than the idle timeout of whatever sits in front (AWS ALB 60 s), and the server
  // closes them only after the client would have. SIGTERM still closes idle ones at once.
  server.keepAliveTimeout = config.httpKeepAliveTimeoutSeconds * 1000;
  server.headersTimeout = server.keepAliveTimeout + 1000;
  const url = `${config.baseUrl}${config.fhirBasePath}`;
  log.info('API listening', { host: policy.host, port: config.port, fhirBase: url, authorization: policy.authEnabled ? 'on' : 'off' });
  if (policy.openToNetwork) {
    log.warn('AUTHORIZATION IS OFF on an address other machines can reach (AUTH_ENABLED=false): anyone who reaches it can read, export and administer every resource; set HOST=127.0.0.1 or turn authorization on', { host: policy.host });
  }
  return {
    url,
    metrics,
    close: async () => {
      await new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      });
      await connection.close();
      await pool.end();
    },
  };
}
