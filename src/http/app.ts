import Koa from 'koa';
import Router from '@koa/router';
import type { Config } from '../config';
import type { Logger } from '../log';
import type { AppState } from './app-state';
import { accessLog } from './middleware/access-log';
import { httpMetrics } from './middleware/http-metrics';
import { apiMetrics, type ApiMetrics } from '../metrics/metrics';
import { operationOutcomeErrors } from './middleware/operation-outcome-errors';
import { forwarded } from './middleware/forwarded';
import { requestId } from './middleware/request-id';
import { bulkExportRouter } from './routes/bulk-export';
import type { BulkExportDependencies } from './routes/export-jobs';
import { metadataRouter } from './routes/metadata';
import { r4ResourceTypes } from '../fhir/definitions';
import { ADDITIONAL_RESOURCE_TYPES } from '../fhir/resource-validation';
import { resourceRouter } from './routes/resources';
import { searchRouter } from './routes/search';
import { viewRunRouter } from './routes/view-run';
import { viewExportRouter } from './routes/view-export';
import { healthRouter } from './routes/health';
import { AsyncRequests } from './routes/async-requests';
import { bulkSubmitRouter } from './routes/bulk-submit';
import { Submitters } from '../bulk-submit/submitters';
import { scheduleRouter } from './routes/schedules';
import { ScheduleLedger } from '../store/schedule-ledger';
import type { AccessTokens } from '../auth/access-tokens';
import type { ClientRegistry } from '../auth/clients';
import { tokenEndpointRouter } from './routes/token';
import { codecRouter } from './routes/codec';
import type { PayloadCodec } from '@temporalio/common';
import { authorization } from './middleware/authorization';
import { declaredRoutes, newRouter, type DeclaredRoute } from './access';
import { tenantRouting } from './middleware/tenant';
import { DEFAULT_TENANT } from '../store/resource-store';
import type { ResourceStore } from '../store/resource-store';
import { softwareVersion } from '../version';
import { TemporalGateway } from '../temporal/gateway';

export interface AppDependencies {
  config: Pick<Config, 'baseUrl' | 'fhirBasePath'> & Partial<Pick<Config, 'tenantHeader' | 'trustedProxies' | 'tokenAudiences' | 'maxResourceBytes' | 'sql' | 'bulkSubmit'>>;
  log: Logger;
  /** The $export endpoints; absent in apps that only serve metadata (tests of middleware). */
  bulkExport?: Omit<BulkExportDependencies, 'fhirBasePath' | 'store'>;
  /** FHIR REST reads and writes on the resource store. */
  store?: ResourceStore;
  /** Extra routers mounted under the FHIR base (tests use this to provoke errors). */
  fhirRouters?: Router<AppState>[];
  /** SMART Backend Services authorization; absent: off. */
  auth?: { tokens: AccessTokens; registry: ClientRegistry };
  /** The codec server for the Temporal Web UI (payload encryption); absent: not served. */
  codec?: { codec: PayloadCodec; corsOrigins: readonly string[] };
  /** Where request and export counts go; absent: a registry of the app's own, not served. */
  metrics?: ApiMetrics;
  /** Authorization explicitly off on a network address: the CapabilityStatement says so in its software name. */
  openToNetwork?: boolean;
}

/** The app, with every route it serves and who may call it (read from its one router). */
export type BulkflowApp = Koa<AppState> & { routes: DeclaredRoute[] };

/**
 * The Koa application: small middleware, one router per endpoint family, under the FHIR base.
 * Every route declares its access (access.ts); the app refuses to start with one that does not.
 */
export function createApp(deps: AppDependencies): BulkflowApp {
  const app = new Koa<AppState>();
  app.proxy = false; // forwarded headers are read only from trusted proxies (middleware/forwarded.ts), never by Koa itself
  app.silent = true; // errors are logged by the error middleware, with the request id

  const fhir = newRouter({ prefix: deps.config.fhirBasePath });
  const temporal =
    deps.bulkExport &&
    new TemporalGateway(deps.bulkExport.client, { retryAfterSeconds: deps.bulkExport.retryAfterSeconds, timeoutMs: deps.bulkExport.temporalTimeoutMs ?? 5000 });
  // Prefer: respond-async on searches and batches runs them on the export worker's task queue.
  const asyncRequests =
    deps.bulkExport && deps.store
      ? new AsyncRequests({
          temporal: temporal!,
          taskQueue: deps.bulkExport.taskQueue,
          output: deps.bulkExport.output,
          retentionMs: deps.bulkExport.exportSettings.retentionMs,
          heartbeatTimeoutMs: deps.bulkExport.exportSettings.heartbeatTimeoutMs,
          syncWaitMs: deps.bulkExport.asyncSyncWaitMs ?? 1000,
          retryAfterSeconds: deps.bulkExport.retryAfterSeconds,
        })
      : undefined;
  const routers = [
    metadataRouter({
      softwareVersion,
      authorizationOff: deps.openToNetwork,
      date: new Date().toISOString(),
      bulkExport: deps.bulkExport !== undefined,
      resourceTypes: deps.store ? [...r4ResourceTypes(), ...ADDITIONAL_RESOURCE_TYPES].sort() : [],
      viewOperations: deps.store !== undefined,
      viewExport: deps.store !== undefined && deps.bulkExport !== undefined,
      bulkSubmit: deps.store !== undefined && deps.bulkExport !== undefined,
      smart: deps.auth !== undefined,
      fhirBasePath: deps.config.fhirBasePath,
    }),
    ...(deps.bulkExport
      ? [
          bulkExportRouter({ ...deps.bulkExport, temporal: temporal!, store: deps.store, fhirBasePath: deps.config.fhirBasePath }),
          ...(deps.store ? [viewExportRouter({ ...deps.bulkExport, temporal: temporal!, store: deps.store, fhirBasePath: deps.config.fhirBasePath, sqlLimits: deps.config.sql?.export })] : []),
          ...(asyncRequests ? [asyncRequests.router()] : []),
          ...(deps.store
            ? [
                bulkSubmitRouter({
                  temporal: temporal!,
                  taskQueue: deps.bulkExport.taskQueue,
                  output: deps.bulkExport.output,
                  submitters: new Submitters(deps.config.bulkSubmit?.submitters ?? []),
                  retentionMs: deps.bulkExport.exportSettings.retentionMs,
                  heartbeatTimeoutMs: deps.bulkExport.exportSettings.heartbeatTimeoutMs,
                  maxParallelFiles: deps.config.bulkSubmit?.maxParallelFiles ?? 4,
                  retryAfterSeconds: deps.bulkExport.retryAfterSeconds,
                  pageSize: deps.bulkExport.exportSettings.manifestPageFiles,
                }),
              ]
            : []),
        ]
      : []),
    ...(deps.fhirRouters ?? []),
    // Last: `/:type/:id` would otherwise also match /bulkstatus/:id and POST /$export.
    ...(deps.store ? [viewRunRouter({ store: deps.store, sqlLimits: deps.config.sql?.run, sqlAdmission: deps.config.sql?.admission }), searchRouter({ store: deps.store, async: asyncRequests }), resourceRouter({ store: deps.store, async: asyncRequests, maxBodyBytes: deps.config.maxResourceBytes })] : []),
  ];
  for (const router of routers) fhir.use(router.routes());
  // Recurring exports: an admin API beside the FHIR base.
  const schedules =
    deps.bulkExport && deps.store
      ? scheduleRouter({
          temporal: temporal!,
          taskQueue: deps.bulkExport.taskQueue,
          exportSettings: deps.bulkExport.exportSettings,
          store: deps.store,
          ledger: new ScheduleLedger(deps.store.pool),
          fhirBasePath: deps.config.fhirBasePath,
          sqlLimits: deps.config.sql?.export,
        })
      : undefined;

  // One router for everything: the route that matches a request is the one that authorizes it.
  const root = newRouter();
  if (deps.auth) {
    root.use(tokenEndpointRouter({ tokens: deps.auth.tokens, registry: deps.auth.registry, baseUrl: deps.config.baseUrl, extraAudiences: deps.config.tokenAudiences ?? [] }).routes());
  }
  if (deps.codec) root.use(codecRouter(deps.codec).routes());
  root.use(healthRouter({ pool: deps.store?.pool, temporal: deps.bulkExport?.client }).routes());
  root.use(fhir.routes());
  if (schedules) root.use(schedules.routes());
  const routes = declaredRoutes(root);

  app.use(requestId());
  app.use(accessLog(deps.log));
  app.use(httpMetrics(deps.metrics ?? apiMetrics()));
  app.use(forwarded({ ...deps.config, trustedProxies: deps.config.trustedProxies ?? [] }));
  app.use(operationOutcomeErrors());
  const defaultTenant = deps.store?.tenant ?? DEFAULT_TENANT;
  app.use(tenantRouting({ defaultTenant, header: deps.config.tenantHeader, fhirBasePath: deps.config.fhirBasePath }));
  app.use(authorization(deps.auth?.tokens, defaultTenant));
  app.use(root.routes());
  app.use(root.allowedMethods());
  return Object.assign(app, { routes });
}
