/**
 * `$sql-export` (and `ViewDefinition/$viewdefinition-export`): SQL on FHIR's asynchronous export
 * of ViewDefinitions. The kick-off checks every view before the job starts and answers 202 with
 * the status URL; polls answer 202 with progress until the job ends, then `303 See Other` to the
 * result URL, which serves the manifest (`Parameters`) or the failure's OperationOutcome;
 * `DELETE` cancels. One `viewExport` workflow per export, under the same owner-only access,
 * tenants, per-tenant cap, poll throttling, signed URLs and expiry as `$export`.
 */
import { forgetPatientList, keepPatientList } from '../../store/patient-lists';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { type ExportedSqlSubject, type ExportedView, type ViewExportInput } from '../../contracts/view-export';
import { checkResolvedSql, contextByCanonical, resolveSqlSubject, typesRead } from '../../sql/sql-subject';
import { DEFAULT_SQL_EXPORT_LIMITS, type EngineLimits } from '../../sql/engine-types';
import { sqlOutcome } from '../sql-run';
import { parquetColumns } from '../../views/parquet-columns';
import { OperationOutcomeError } from '../../fhir/outcome-error';
import { exportFileKey } from '../../output/file-keys';
import type { ResourceStore } from '../../store/resource-store';
import { acceptedParameters, inProgressParameters, manifestParameters, progressText } from '../../views/export-manifest';
import { parseViewExportRequest } from '../../views/export-request';
import { compileView } from '../../views/view-definition';
import { viewExport, viewExportStatusQuery } from '../../../workflows/view-export';
import { viewExportStartOptions } from '../../../workflows/visibility';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { ownerOf, requireJobAccess, requirePermission, requireSomeRead } from '../authorize';
import { jobState, newJobId, failedJobError } from '../job-state';
import { PollThrottle } from '../poll-throttle';
import { readJsonBody } from '../read-json-body';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';
import { operationOutcome } from '../../fhir/operation-outcome';
import { storedByCanonical, viewOf } from '../view-subjects';
import { sendFile } from '../send-file';
import type { BulkExportRouteDependencies } from './export-jobs';
import { checkExportScope } from '../export-scope';
import { admitExport } from '../export-admission';

type AppContext = Context & { state: AppState };

const VIEW_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const FILE_NAME = /^[A-Za-z][A-Za-z0-9_]*-\d{4}-\d{4}\.(ndjson|csv|json|parquet)$/;
const CONTENT_TYPES: Record<string, string> = { ndjson: 'application/x-ndjson', csv: 'text/csv; charset=utf-8', json: 'application/json', parquet: 'application/vnd.apache.parquet' };

export function viewExportRouter(deps: BulkExportRouteDependencies & { store: ResourceStore; sqlLimits?: EngineLimits }): Router<AppState> {
  const router = newRouter();
  const throttle = new PollThrottle(deps.pollToleranceMs ?? 1000);
  const statusUrl = (ctx: AppContext, id: string) => `${ctx.state.fhirBaseUrl}/sql-export/${id}`;
  const signed = deps.signedUrlTtlSeconds !== undefined && deps.output.signedUrl !== undefined;

  const state = async (ctx: AppContext, id: string) => {
    const found = await jobState(deps.temporal, id, 'viewExport', viewExportStatusQuery);
    requireJobAccess(ctx, found);
    return found;
  };

  /** Every subject resolved, named and checked before anything starts: views as ViewDefinitions, SQL subjects with their tables and parameters. */
  const checkedSubjects = async (ctx: AppContext, request: ReturnType<typeof parseViewExportRequest>): Promise<{ views: ExportedView[]; sqlSubjects: ExportedSqlSubject[] }> => {
    const store = deps.store.forTenant(ctx.state.tenant);
    const views: ExportedView[] = [];
    const sqlSubjects: ExportedSqlSubject[] = [];
    const names = new Set<string>();
    const context = contextByCanonical(request.context);
    const used = new Set<Record<string, unknown>>();
    /** Names the subject the problems of `work` belong to. */
    const within = async <T>(i: number, work: () => T | Promise<T>): Promise<T> => {
      try {
        return await work();
      } catch (err) {
        if (err instanceof OperationOutcomeError) for (const issue of err.issues) issue.expression = (issue.expression ?? ['']).map((e) => `subject[${i}]${e ? `.${e}` : ''}`);
        throw err;
      }
    };
    for (const [i, { name, subject, parameters }] of request.subjects.entries()) {
      const definition = await viewOf(ctx, store, subject);
      const outputName = name ?? (typeof definition.name === 'string' ? definition.name : undefined);
      if (!outputName || !VIEW_NAME.test(outputName)) {
        throw OperationOutcomeError.invalid(`subject[${i}] needs a name for its output (letters, digits, _; up to 64, starting with a letter), from its name part or the subject's name`, `subject[${i}].name`);
      }
      if (names.has(outputName)) throw OperationOutcomeError.invalid(`Two subjects are named ${outputName}; each output needs its own name`, `subject[${i}].name`);
      names.add(outputName);
      if (definition.resourceType === 'Library') {
        const resolved = await within(i, () => resolveSqlSubject(definition, { parameters, context, used }, (type, url, version) => storedByCanonical(ctx, store, type, url, version)));
        for (const type of typesRead(resolved)) requirePermission(ctx, type, 'r');
        // A SQL error is the kick-off's 422, not a failed job later.
        await within(i, () => checkResolvedSql(resolved, deps.sqlLimits ?? DEFAULT_SQL_EXPORT_LIMITS).catch((err: unknown) => Promise.reject(sqlOutcome(err))));
        sqlSubjects.push({ name: outputName, ...resolved });
        continue;
      }
      if (parameters) throw OperationOutcomeError.invalid(`subject[${i}] is a ViewDefinition: parameters bind a SQLQuery's placeholders`, `subject[${i}].parameters`);
      const view = await within(i, () => compileView(definition));
      requirePermission(ctx, view.resource, 'r');
      if (request.format === 'parquet') await within(i, () => parquetColumns(view.columns)); // every column's type has a Parquet type
      views.push({ name: outputName, definition, resource: view.resource });
    }
    const unused = (request.context ?? []).filter((resource) => !used.has(resource));
    if (unused.length > 0) throw OperationOutcomeError.invalid(`context ${unused.map((r) => String(r.url)).join(', ')} matches no table of a SQL subject`, 'context');
    return { views, sqlSubjects };
  };

  const kickOff = async (ctx: AppContext) => {
    requireSomeRead(ctx);
    if (!/respond-async/i.test(ctx.get('Prefer'))) throw OperationOutcomeError.invalid('$sql-export runs asynchronously: send Prefer: respond-async');
    const request = parseViewExportRequest(await readJsonBody(ctx, 8 * 1024 * 1024));
    const store = deps.store.forTenant(ctx.state.tenant);
    await checkExportScope(store, { groupId: request.groupId, patientIds: request.patientIds });
    const { views, sqlSubjects } = await checkedSubjects(ctx, request);
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
    await admitExport({ ...deps, pool: store.pool }, tenant, exportId, () => deps.temporal.start(viewExport, { taskQueue: deps.taskQueue, workflowId: exportId, args: [input], ...viewExportStartOptions(input) })).catch(
      async (err: unknown) => {
        if (patientList) await forgetPatientList(store.pool, exportId);
        throw err;
      },
    );
    ctx.state.exportStarted = { kind: 'view', level: input.level };
    ctx.status = 202;
    ctx.set('Content-Location', statusUrl(ctx, exportId));
    ctx.type = FHIR_JSON;
    ctx.body = acceptedParameters(exportId, statusUrl(ctx, exportId), request.clientTrackingId);
  };
  router.post('/$sql-export', access.token, kickOff);
  // The names clients shipped before SQL on FHIR settled on $sql-export.
  router.post('/ViewDefinition/$viewdefinition-export', access.token, kickOff);
  router.post('/$sqlquery-export', access.token, kickOff);
  router.post('/Library/$sqlquery-export', access.token, kickOff);

  router.get('/sql-export/:id', access.token, async (ctx) => {
    const client = ctx.state.clientAddress;
    const wait = throttle.secondsTooEarly(ctx.params.id, client);
    const found = await state(ctx, ctx.params.id);
    const status = found.kind === 'running' ? found.status : undefined;
    if (found.kind === 'failed' || status?.phase === 'completed') {
      throttle.forget(ctx.params.id, client);
      ctx.status = 303;
      ctx.set('Location', `${statusUrl(ctx, ctx.params.id)}/result`);
      ctx.body = '';
      return;
    }
    if (wait > 0) throw OperationOutcomeError.throttled(`Polled too soon: wait ${wait} s (Retry-After) between status requests`, wait);
    throttle.told(ctx.params.id, client, deps.retryAfterSeconds);
    ctx.status = 202;
    ctx.set('Retry-After', String(deps.retryAfterSeconds));
    ctx.set('X-Progress', progressText(status));
    ctx.type = FHIR_JSON;
    ctx.body = inProgressParameters(ctx.params.id, status, Date.now());
  });

  router.get('/sql-export/:id/result', access.token, async (ctx) => {
    const found = await state(ctx, ctx.params.id);
    // A view that could not be evaluated is the client's 422, anything else 500 (job-state.ts).
    if (found.kind === 'failed') throw failedJobError(found, 'export');
    const status = found.status;
    if (!status || status.phase !== 'completed') throw OperationOutcomeError.notFound('The export has no result yet; poll its status URL');
    const sign = async (key: string) => (signed ? deps.output.signedUrl!(key, deps.signedUrlTtlSeconds!) : `${statusUrl(ctx, ctx.params.id)}/files/${key.split('/').pop()}`);
    const urls = new Map<string, string>();
    for (const view of Object.values(status.views)) for (const part of view.parts) urls.set(part.key, await sign(part.key));
    ctx.status = 200;
    ctx.set('Expires', new Date(status.expiresAt!).toUTCString());
    ctx.type = FHIR_JSON;
    ctx.body = manifestParameters(status, statusUrl(ctx, ctx.params.id), (key) => urls.get(key)!);
  });

  router.get('/sql-export/:id/files/:file', access.token, async (ctx) => {
    const { id, file } = ctx.params;
    if (!FILE_NAME.test(file)) throw OperationOutcomeError.notFound('No such file');
    const found = await state(ctx, id);
    if (found.kind === 'failed') throw failedJobError(found, 'export');
    const stream = await deps.output.openReader(exportFileKey({ tenant: ctx.state.tenant, exportId: id }, file));
    if (!stream) throw OperationOutcomeError.notFound('No such file');
    sendFile(ctx, stream, file, CONTENT_TYPES[file.split('.').pop()!]);
  });

  router.delete('/sql-export/:id', access.token, async (ctx) => {
    await state(ctx, ctx.params.id);
    await deps.temporal.cancel(ctx.params.id);
    ctx.status = 202;
    ctx.type = FHIR_JSON;
    ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: 'The export was cancelled; its files are being deleted' });
  });

  return router;
}
