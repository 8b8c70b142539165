/**
 * `$sql-export` (and the earlier `ViewDefinition/$viewdefinition-export` and `$sqlquery-export`):
 * SQL on FHIR's asynchronous export of ViewDefinitions and SQL subjects. The kick-off checks every
 * subject before the job starts (view-export-subjects.ts) and answers 202 with
 * the status URL; polls answer 202 with progress until the job ends, then `303 See Other` to the
 * result URL, which serves the manifest (`Parameters`) or the failure's OperationOutcome;
 * `DELETE` cancels. One `viewExport` workflow per export, under the same owner-only access,
 * tenants, per-tenant cap, poll throttling, signed URLs and expiry as `$export`.
 */
import { forgetPatientList, keepPatientList } from '../../store/patient-lists';
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { ViewExportInput } from '../../contracts/view-export';
import type { EngineLimits } from '../../sql/engine-types';
import { checkedSubjects } from '../view-export-subjects';
import { OperationOutcomeError } from '../../fhir/outcome-error';
import { exportFileKey } from '../../output/file-keys';
import type { ResourceStore } from '../../store/resource-store';
import { acceptedParameters, inProgressParameters, manifestParameters, progressText } from '../../views/export-manifest';
import { parseViewExportRequest } from '../../views/export-request';
import { viewExport, viewExportStatusQuery } from '../../../workflows/view-export';
import { viewExportStartOptions } from '../../../workflows/visibility';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { ownerOf, requireJobAccess, requireSomeRead } from '../authorize';
import { jobState, newJobId, failedJobError } from '../job-state';
import { PollThrottle } from '../poll-throttle';
import { readJsonBody } from '../read-json-body';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';
import { operationOutcome } from '../../fhir/operation-outcome';
import { sendStoredFile } from '../send-file';
import type { BulkExportRouteDependencies } from './export-jobs';
import { checkExportScope } from '../export-scope';
import { admitExport } from '../export-admission';

type AppContext = Context & { state: AppState };

const FILE_NAME = /^[A-Za-z][A-Za-z0-9_]*-\d{4}-\d{4}\.(ndjson|csv|json|parquet)$/;
const CONTENT_TYPES: Record<string, string> = { ndjson: 'application/x-ndjson', csv: 'text/csv; charset=utf-8', json: 'application/json', parquet: 'application/vnd.apache.parquet' };

/** What the `$sql-export` handlers share: the app's dependencies and this router's poll throttle. */
interface ViewExportDeps extends BulkExportRouteDependencies {
  store: ResourceStore;
  sqlLimits?: EngineLimits;
  throttle: PollThrottle;
}

export function viewExportRouter(deps: BulkExportRouteDependencies & { store: ResourceStore; sqlLimits?: EngineLimits }): Router<AppState> {
  const router = newRouter();
  const shared: ViewExportDeps = { ...deps, throttle: new PollThrottle(deps.pollToleranceMs ?? 1000) };
  // $sql-export, and the names clients shipped before SQL on FHIR settled on it.
  for (const path of ['/$sql-export', '/ViewDefinition/$viewdefinition-export', '/$sqlquery-export', '/Library/$sqlquery-export']) router.post(path, access.token, (ctx) => kickOff(shared, ctx));
  router.get('/sql-export/:id', access.token, (ctx) => status(shared, ctx));
  router.get('/sql-export/:id/result', access.token, (ctx) => result(shared, ctx));
  router.get('/sql-export/:id/files/:file', access.token, (ctx) => file(shared, ctx));
  router.delete('/sql-export/:id', access.token, (ctx) => cancel(shared, ctx));
  return router;
}

const statusUrl = (ctx: AppContext, id: string) => `${ctx.state.fhirBaseUrl}/sql-export/${id}`;

/** The export's state as its owner sees it (gone or not theirs: 404). */
async function state(deps: ViewExportDeps, ctx: AppContext, id: string) {
  const found = await jobState(deps.temporal, id, 'viewExport', viewExportStatusQuery);
  requireJobAccess(ctx, found);
  return found;
}

/** The kick-off: everything checked, then one `viewExport` workflow; 202 with the status URL. */
async function kickOff(deps: ViewExportDeps, ctx: AppContext): Promise<void> {
  requireSomeRead(ctx);
  if (!/respond-async/i.test(ctx.get('Prefer'))) throw OperationOutcomeError.invalid('$sql-export runs asynchronously: send Prefer: respond-async');
  const request = parseViewExportRequest(await readJsonBody(ctx, 8 * 1024 * 1024));
  const store = deps.store.forTenant(ctx.state.tenant);
  await checkExportScope(store, { groupId: request.groupId, patientIds: request.patientIds });
  const { views, sqlSubjects } = await checkedSubjects(ctx, store, request, deps.sqlLimits);
  const tenant = ctx.state.tenant;
  const exportId = newJobId();
  // A patient list is kept once in the store, not in every partition's workflow input.
  const patientList = request.patientIds ? await keepPatientList(store.pool, tenant, exportId, request.patientIds) : undefined;
  const compartment = request.groupId || patientList ? { groupId: request.groupId, ...(patientList ? { patientList } : {}) } : undefined;
  const input: ViewExportInput = {
    exportId,
    level: request.groupId ? 'group' : request.patientIds ? 'patient' : 'system',
    owner: ownerOf(ctx),
    request: `${ctx.state.fhirBaseUrl}${ctx.path.slice(deps.fhirBasePath.length)}`,
    clientTrackingId: request.clientTrackingId,
    window: { tenant, since: request.since, compartment },
    views,
    ...(sqlSubjects.length > 0 ? { sqlSubjects } : {}),
    format: request.format,
    header: request.header,
    tuning: deps.exportSettings,
  };
  const start = () => deps.temporal.start(viewExport, { taskQueue: deps.taskQueue, workflowId: exportId, args: [input], ...viewExportStartOptions(input) });
  await admitExport({ ...deps, pool: store.pool }, tenant, exportId, start).catch(async (err: unknown) => {
    if (patientList) await forgetPatientList(store.pool, exportId);
    throw err;
  });
  ctx.state.exportStarted = { kind: 'view', level: input.level };
  ctx.status = 202;
  ctx.set('Content-Location', statusUrl(ctx, exportId));
  ctx.type = FHIR_JSON;
  ctx.body = acceptedParameters(exportId, statusUrl(ctx, exportId), request.clientTrackingId);
}

/** A poll: 202 with progress while it runs (too early: 429), then 303 to the result. */
async function status(deps: ViewExportDeps, ctx: AppContext): Promise<void> {
  const client = ctx.state.clientAddress;
  const wait = deps.throttle.secondsTooEarly(ctx.params.id, client);
  const found = await state(deps, ctx, ctx.params.id);
  const progress = found.kind === 'running' ? found.status : undefined;
  if (found.kind === 'failed' || progress?.phase === 'completed') {
    deps.throttle.forget(ctx.params.id, client);
    ctx.status = 303;
    ctx.set('Location', `${statusUrl(ctx, ctx.params.id)}/result`);
    ctx.body = '';
    return;
  }
  if (wait > 0) throw OperationOutcomeError.throttled(`Polled too soon: wait ${wait} s (Retry-After) between status requests`, wait);
  deps.throttle.told(ctx.params.id, client, deps.retryAfterSeconds);
  ctx.status = 202;
  ctx.set('Retry-After', String(deps.retryAfterSeconds));
  ctx.set('X-Progress', progressText(progress));
  ctx.type = FHIR_JSON;
  ctx.body = inProgressParameters(ctx.params.id, progress, Date.now());
}

/** The result: the manifest (a failed export: its OperationOutcome, 422 for a view that could not be evaluated, else 500). */
async function result(deps: ViewExportDeps, ctx: AppContext): Promise<void> {
  const found = await state(deps, ctx, ctx.params.id);
  if (found.kind === 'failed') throw failedJobError(found, 'export');
  const done = found.status;
  if (!done || done.phase !== 'completed') throw OperationOutcomeError.notFound('The export has no result yet; poll its status URL');
  const signed = deps.signedUrlTtlSeconds !== undefined && deps.output.signedUrl !== undefined;
  const sign = async (key: string) => (signed ? deps.output.signedUrl!(key, deps.signedUrlTtlSeconds!) : `${statusUrl(ctx, ctx.params.id)}/files/${key.split('/').pop()}`);
  const urls = new Map<string, string>();
  for (const view of Object.values(done.views)) for (const part of view.parts) urls.set(part.key, await sign(part.key));
  ctx.status = 200;
  ctx.set('Expires', new Date(done.expiresAt!).toUTCString());
  ctx.type = FHIR_JSON;
  ctx.body = manifestParameters(done, statusUrl(ctx, ctx.params.id), (key) => urls.get(key)!);
}

/** One part file, to its owner. */
async function file(deps: ViewExportDeps, ctx: AppContext): Promise<void> {
  const { id, file: name } = ctx.params;
  if (!FILE_NAME.test(name)) throw OperationOutcomeError.notFound('No such file');
  const found = await state(deps, ctx, id);
  if (found.kind === 'failed') throw failedJobError(found, 'export');
  await sendStoredFile(ctx, deps.output, exportFileKey({ tenant: ctx.state.tenant, exportId: id }, name), name, CONTENT_TYPES[name.split('.').pop()!]);
}

/** DELETE: cancels the workflow, which deletes the files. */
async function cancel(deps: ViewExportDeps, ctx: AppContext): Promise<void> {
  await state(deps, ctx, ctx.params.id);
  await deps.temporal.cancel(ctx.params.id);
  ctx.status = 202;
  ctx.type = FHIR_JSON;
  ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: 'The export was cancelled; its files are being deleted' });
}
