/**
 * `$export` kick-off, the status URL (poll, DELETE) and file downloads. Each export is one
 * `bulkExport` workflow whose id is the job id; status comes from its `status` query, or from
 * its description when no worker answers.
 */
import { randomBytes } from 'node:crypto';
import { createGzip } from 'node:zlib';
import type Router from '@koa/router';
import type { Client } from '@temporalio/client';
import type { TemporalGateway } from '../../temporal/gateway';
import type { Context } from 'koa';
import type { ExportSettings, ResultPattern } from '../../config';
import type { Scopes } from '../../auth/scopes';
import { r4ResourceTypes } from '../../fhir/definitions';
import { checkAccept, parametersFromBody, parametersFromQuery, parseKickoffParameters, parsePrefer, type Handling, type KickoffRequest } from '../../fhir/kickoff-parameters';
import { patientLevelTypes } from '../../fhir/patient-compartment';
import { buildManifest, downloadUrl, manifestPage, progressText, retryAfterSeconds, type BulkManifest, type ManifestItem } from '../../fhir/manifest';
import { operationOutcome } from '../../fhir/operation-outcome';
import { exportFileKey } from '../../output/file-keys';
import type { OutputStore } from '../../output/output-store';
import type { ResourceStore } from '../../store/resource-store';
import { FHIR_ID } from '../../fhir/resource-validation';
import { exportStateKey, exportTenantKey } from '../../temporal/search-attributes';
import { bulkExport, statusQuery } from '../../../workflows/bulk-export';
import type { ExportInput, ExportLevel, ExportStatus } from '../../../workflows/types';
import { exportStartOptions } from '../../../workflows/describe';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { HttpError } from '../http-error';
import { jobState } from '../job-state';
import { ownerOf, requireJobAccess } from '../authorize';
import { PollThrottle } from '../poll-throttle';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';
import { readJsonBody } from '../read-json-body';

export interface BulkExportDependencies {
  client: Client;
  taskQueue: string;
  output: OutputStore;
  exportSettings: ExportSettings;
  /** Retry-After on in-progress answers: at least this... */
  retryAfterSeconds: number;
  /** ...at most this, growing with the export's expected remaining time (default: retryAfterSeconds). */
  retryAfterMaxSeconds?: number;
  /** `manifest` (the IG: 200 with the manifest on the status URL, default) or `see-other` (303 to a result URL). */
  resultPattern?: ResultPattern;
  /** Path of the FHIR base (e.g. /fhir), to echo the kick-off request. */
  fhirBasePath: string;
  /** Set (with a GCS output store): manifests list signed URLs valid this long, and `requiresAccessToken: false`. */
  signedUrlTtlSeconds?: number;
  /** Unfinished exports one tenant may have at once (unset: no limit). */
  maxRunningExports?: number;
  /** A status poll may come this much sooner than the Retry-After it was given (default 1 s). */
  pollToleranceMs?: number;
  /** How long one Temporal call may take before the request answers 503 (default 5 s). */
  temporalTimeoutMs?: number;
  /** A `Prefer: respond-async` search or batch that finishes within this long is answered synchronously (ms, default 1000). */
  asyncSyncWaitMs?: number;
  /** Checks Group and `patient` references at kick-off. */
  store?: ResourceStore;
}

const FILE_NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.ndjson$/;

const newJobId = () => randomBytes(16).toString('base64url');

/**
 * With authorization on, an export reads only types the token grants read access to: a
 * requested type that is not granted is 403 under strict handling, dropped and reported under
 * lenient; without `_type`, the export covers the granted types.
 */
function typesTheCallerMayRead(scopes: Scopes, request: KickoffRequest, handling: Handling, level: ExportLevel): string[] | undefined {
  if (request.types) {
    const denied = request.types.filter((t) => !scopes.canRead(t));
    if (denied.length > 0 && handling === 'strict') {
      throw new HttpError(403, 'forbidden', `The access token does not grant read access to ${denied.join(', ')} (send Prefer: handling=lenient to have them left out)`, {
        expression: ['_type'],
      });
    }
    for (const type of denied) {
      request.lenientIssues.push({ severity: 'warning', code: 'forbidden', diagnostics: `${type} is not granted by the access token; left out`, expression: ['_type'] });
    }
    const granted = request.types.filter((t) => scopes.canRead(t));
    if (granted.length === 0) throw new HttpError(403, 'forbidden', 'The access token grants read access to none of the requested types', { expression: ['_type'] });
    return granted;
  }
  if (scopes.readsEverything) return undefined;
  const exportable = new Set(level === 'system' ? r4ResourceTypes() : patientLevelTypes());
  const granted = scopes.readableTypes().filter((t) => exportable.has(t));
  if (granted.length === 0) throw new HttpError(403, 'forbidden', 'The access token grants read access to no type this export could hold');
  return granted;
}

/**
 * includeAssociatedData adds Provenance resources, so it needs read access to Provenance like a
 * requested type: 403 under strict handling, left out and reported under lenient.
 */
function provenanceTheCallerMayRead(scopes: Scopes, request: KickoffRequest, handling: Handling): KickoffRequest['associatedProvenance'] {
  if (!request.associatedProvenance || scopes.canRead('Provenance')) return request.associatedProvenance;
  const diagnostics = 'The access token does not grant read access to Provenance, which includeAssociatedData adds';
  if (handling === 'strict') {
    throw new HttpError(403, 'forbidden', `${diagnostics} (send Prefer: handling=lenient to have them left out)`, { expression: ['includeAssociatedData'] });
  }
  request.lenientIssues.push({ severity: 'warning', code: 'forbidden', diagnostics: `${diagnostics}; left out`, expression: ['includeAssociatedData'] });
  return undefined;
}

/** What the routes use: the app's dependencies, with Temporal behind the gateway. */
type BulkExportRouteDependencies = Omit<BulkExportDependencies, 'client' | 'temporalTimeoutMs'> & { temporal: TemporalGateway };

export function bulkExportRouter(deps: BulkExportRouteDependencies): Router<AppState> {
  const router = newRouter();
  const throttle = new PollThrottle(deps.pollToleranceMs ?? 1000);

  const kickOff = (level: ExportLevel) => async (ctx: Context & { state: AppState }) => {
    checkAccept(ctx.get('Accept') || undefined);
    const handling = parsePrefer(ctx.get('Prefer') || undefined);
    const raw = ctx.method === 'POST' ? parametersFromBody(await readJsonBody(ctx)) : parametersFromQuery(ctx.query);
    if (ctx.method === 'GET' && raw.has('patient')) {
      throw HttpError.badRequest('The patient parameter is accepted only in a POST Parameters body', 'patient');
    }
    const request = parseKickoffParameters(raw, handling, level);
    if (ctx.state.caller) {
      request.types = typesTheCallerMayRead(ctx.state.caller.scopes, request, handling, level);
      request.associatedProvenance = provenanceTheCallerMayRead(ctx.state.caller.scopes, request, handling);
    }
    const tenant = ctx.state.tenant;
    const store = deps.store?.forTenant(tenant);
    const groupId = level === 'group' ? await checkGroup(store, ctx.params.id) : undefined;
    if (request.patients) await checkPatients(store, request.patients, groupId);
    await checkRunningExports(tenant);
    const compartment = level === 'system' ? undefined : { groupId, patientIds: request.patients };

    const exportId = newJobId();
    const owner = ownerOf(ctx);
    const input: ExportInput = {
          exportId,
          level,
          tenant,
          owner,
          request: `${ctx.state.fhirBaseUrl}${ctx.path.slice(deps.fhirBasePath.length)}${ctx.querystring ? `?${ctx.querystring}` : ''}`,
          types: request.types,
          compartment,
          since: request.since,
          until: request.until,
          elements: request.elements,
          typeFilters: request.typeFilters,
          associatedProvenance: request.associatedProvenance,
          organizeOutputBy: request.organizeOutputBy,
          allowPartialManifests: request.allowPartialManifests,
          lenientIssues: request.lenientIssues.map((i) => ({ severity: i.severity ?? 'warning', code: i.code, diagnostics: i.diagnostics, expression: i.expression })),
          tuning: deps.exportSettings,
    };
    await deps.temporal.start(bulkExport, { taskQueue: deps.taskQueue, workflowId: exportId, args: [input], ...exportStartOptions(input) });
    ctx.status = 202;
    ctx.set('Content-Location', `${ctx.state.fhirBaseUrl}/bulkstatus/${exportId}`);
    ctx.type = FHIR_JSON;
    ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: `Export ${exportId} started` });
  };

  /** A tenant may have `maxRunningExports` unfinished exports; more is 429 (finished ones never count). */
  const checkRunningExports = async (tenant: string): Promise<void> => {
    if (!deps.maxRunningExports) return;
    const query = `WorkflowType = 'bulkExport' AND ExecutionStatus = 'Running' AND ${exportTenantKey.name} = '${tenant}' AND ${exportStateKey.name} = 'running'`;
    const count = await deps.temporal.countWorkflows(query);
    if (count >= deps.maxRunningExports) {
      throw new HttpError(429, 'throttled', `Tenant ${tenant} has ${count} exports running, the most allowed at once; retry when one has finished`, {
        headers: { 'Retry-After': String(Math.max(deps.retryAfterSeconds, 10)) },
      });
    }
  };

  /** The Group to export must exist (404 otherwise). */
  const checkGroup = async (store: ResourceStore | undefined, id: string): Promise<string> => {
    if (!FHIR_ID.test(id)) throw HttpError.notFound(`Group/${id} is not known`);
    const group = store ? await store.read('Group', id) : undefined;
    if (!group || group.deleted) throw HttpError.notFound(`Group/${id} is not known`);
    const cycle = await store!.groupCycle(id);
    if (cycle) {
      throw new HttpError(400, 'business-rule', `Group/${id} contains itself through nested Groups: ${cycle.map((g) => `Group/${g}`).join(' → ')}`);
    }
    return id;
  };

  /** Every `patient` must be a stored Patient and, for a Group export, an active member. */
  const checkPatients = async (store: ResourceStore | undefined, patients: string[], groupId: string | undefined): Promise<void> => {
    const known = store ? await store.existingIds('Patient', patients) : new Set<string>();
    const unknown = patients.filter((p) => !known.has(p));
    if (unknown.length > 0) throw HttpError.badRequest(`patient names unknown patients: ${unknown.map((p) => `Patient/${p}`).join(', ')}`, 'patient');
    if (groupId && store) {
      const members = await store.groupPatientsAmong(groupId, patients);
      const outside = patients.filter((p) => !members.has(p));
      if (outside.length > 0) {
        throw HttpError.badRequest(`patient names patients who are not members of Group/${groupId}: ${outside.map((p) => `Patient/${p}`).join(', ')}`, 'patient');
      }
    }
  };

  for (const [path, level] of [['/$export', 'system'], ['/Patient/$export', 'patient'], ['/Group/:id/$export', 'group']] as const) {
    router.get(path, access.token, kickOff(level));
    router.post(path, access.token, kickOff(level));
  }

  /** A running export's status (undefined when no worker answers), or a failure; gone exports are an HttpError 404. */
  const exportState = async (ctx: Context & { state: AppState }, id: string) => {
    const state = await jobState(deps.temporal, id, 'bulkExport', statusQuery);
    requireJobAccess(ctx, state);
    return state;
  };
  const seeOther = deps.resultPattern === 'see-other';

  /** The completed manifest (or its page), with Expires. */
  const answerManifest = async (ctx: Context & { state: AppState }, status: ExportStatus, manifest: BulkManifest) => {
    ctx.status = status.phase === 'completed' ? 200 : 202;
    if (status.phase === 'completed') ctx.set('Expires', new Date(status.expiresAt!).toUTCString());
    else ctx.set('X-Progress', progressText(status));
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = signed ? await withSignedUrls(manifest) : manifest;
  };

  // DOWNLOADS_REQUIRE_TOKEN=false: manifests were built with file keys as URLs; each becomes a signed URL.
  const signed = deps.signedUrlTtlSeconds !== undefined && deps.output.signedUrl !== undefined;
  const withSignedUrls = async (manifest: BulkManifest): Promise<BulkManifest> => {
    const sign = (key: string) => deps.output.signedUrl!(key, deps.signedUrlTtlSeconds!);
    const items = async (list: ManifestItem[] | undefined) =>
      list &&
      Promise.all(list.map(async (item) => ({ ...item, url: await sign(item.url), ...(item.continuesInFile ? { continuesInFile: await sign(item.continuesInFile) } : {}) })));
    return {
      ...manifest,
      requiresAccessToken: false,
      output: (await items(manifest.output))!,
      ...(manifest.deleted ? { deleted: await items(manifest.deleted) } : {}),
      error: (await items(manifest.error))!,
    };
  };

  /** allowPartialManifests: the requested page, 'not-yet' while it is filling. */
  const pageOf = (ctx: Context & { state: AppState }, status: ExportStatus) => {
    const page = ctx.query.page === undefined ? 1 : Number(ctx.query.page);
    if (!Number.isInteger(page) || page < 1) throw HttpError.badRequest('page must be a whole number from 1', 'page');
    const statusUrl = `${ctx.state.fhirBaseUrl}/bulkstatus/${ctx.params.id}`;
    const answer = manifestPage(status, page, fileUrl(ctx), (n) => `${statusUrl}?page=${n}`);
    if (answer === 'no-such-page') throw HttpError.notFound(`The manifest has no page ${page}`);
    return answer;
  };
  // The URL names job and file; the tenant is the request's, a scheduled run's prefix is in its memo.
  const fileUrl = (ctx: Context & { state: AppState }) => (key: string) => (signed ? key : downloadUrl(ctx.state.fhirBaseUrl)(key));

  router.get('/bulkstatus/:id', access.token, async (ctx) => {
    const client = ctx.ip;
    const wait = throttle.secondsTooEarly(ctx.params.id, client); // as of arrival, before the lookup
    const state = await exportState(ctx, ctx.params.id); // unknown, cancelled, expired, not the caller's: 404, never 429
    const status = state.kind === 'running' ? state.status : undefined;
    const finished = state.kind === 'failed' || status?.phase === 'completed';

    if (seeOther && finished) {
      // The asynchronous request pattern with a result URL: success and failure alike.
      throttle.forget(ctx.params.id, client);
      ctx.status = 303;
      ctx.set('Location', `${ctx.state.fhirBaseUrl}/bulkstatus/${ctx.params.id}/result`);
      ctx.body = '';
      return;
    }
    if (state.kind === 'failed') throw new HttpError(500, 'exception', `The export failed: ${state.reason}`);

    const paged = !seeOther && status?.manifestPageFiles && status.transactionTime ? pageOf(ctx, status) : undefined;
    if (paged && paged !== 'not-yet') {
      throttle.forget(ctx.params.id, client);
      return answerManifest(ctx, status!, paged.manifest);
    }
    if (!paged && status?.phase === 'completed') {
      throttle.forget(ctx.params.id, client);
      return answerManifest(ctx, status, buildManifest(status, fileUrl(ctx)));
    }
    if (wait > 0) {
      throw new HttpError(429, 'throttled', `Polled too soon: wait ${wait} s (Retry-After) between status requests`, {
        headers: { 'Retry-After': String(wait) },
      });
    }
    const retryAfter = status ? retryAfterSeconds(status, deps.retryAfterSeconds, deps.retryAfterMaxSeconds ?? deps.retryAfterSeconds) : deps.retryAfterSeconds;
    throttle.told(ctx.params.id, client, retryAfter);
    ctx.status = 202;
    ctx.set('Retry-After', String(retryAfter));
    ctx.set('X-Progress', status ? progressText(status) : 'in progress');
    ctx.body = '';
  });

  /** The result URL (303 pattern): the manifest once complete, the failure's OperationOutcome; 404 while running. */
  router.get('/bulkstatus/:id/result', access.token, async (ctx) => {
    const state = await exportState(ctx, ctx.params.id);
    if (state.kind === 'failed') throw new HttpError(500, 'exception', `The export failed: ${state.reason}`);
    const status = state.status;
    if (!status || status.phase !== 'completed') throw HttpError.notFound('The export has no result yet');
    const paged = status.manifestPageFiles ? pageOf(ctx, status) : undefined;
    await answerManifest(ctx, status, paged && paged !== 'not-yet' ? paged.manifest : buildManifest(status, fileUrl(ctx)));
  });

  router.delete('/bulkstatus/:id', access.token, async (ctx) => {
    await exportState(ctx, ctx.params.id); // 404 for gone exports; a failed one can still be deleted
    await deps.temporal.cancel(ctx.params.id);
    ctx.status = 202;
    ctx.type = FHIR_JSON;
    ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: 'The export was cancelled; its files are being deleted' });
  });

  router.get('/bulkfiles/:id/:file', access.token, async (ctx) => {
    const { id, file } = ctx.params;
    if (!FILE_NAME.test(file)) throw HttpError.notFound('No such file');
    const state = await exportState(ctx, id);
    if (state.kind === 'failed') throw new HttpError(500, 'exception', `The export failed: ${state.reason}`);
    const stream = await deps.output.openReader(exportFileKey({ tenant: ctx.state.tenant, exportId: id, outputPrefix: state.outputPrefix }, file));
    if (!stream) throw HttpError.notFound('No such file');
    ctx.status = 200;
    ctx.type = 'application/fhir+ndjson';
    ctx.set('Content-Disposition', `attachment; filename="${file}"`);
    ctx.vary('Accept-Encoding');
    if (ctx.acceptsEncodings('gzip', 'identity') === 'gzip') {
      ctx.set('Content-Encoding', 'gzip');
      ctx.body = stream.pipe(createGzip());
    } else {
      ctx.body = stream;
    }
  });

  return router;
}
