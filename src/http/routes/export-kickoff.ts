/**
 * `$export` kick-off at the three levels (GET and POST; IG v2.0.0 and STU3) and `$export-v4`
 * (POST only; the STU4 ballot, whose manifest the status URL then serves): parameters checked,
 * narrowed to what the token may read, the Group and patients checked, the tenant's cap
 * enforced, then one `bulkExport` workflow started whose id is the job id.
 */
import { forgetPatientList, keepPatientList } from '../../store/patient-lists';
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Scopes } from '../../auth/scopes';
import { r4ResourceTypes } from '../../fhir/definitions';
import { checkAccept, parametersFromBody, parametersFromQuery, parseKickoffParameters, parsePrefer, type Handling, type KickoffDialect, type KickoffRequest } from '../../fhir/kickoff-parameters';
import { patientLevelTypes } from '../../fhir/patient-compartment';
import { operationOutcome } from '../../fhir/operation-outcome';
import { bulkExport } from '../../../workflows/bulk-export';
import type { ExportInput, ExportLevel } from '../../contracts/bulk-export';
import { exportStartOptions } from '../../../workflows/visibility';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { ownerOf } from '../authorize';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';
import { readJsonBody } from '../read-json-body';
import { newJobId } from '../job-state';
import type { BulkExportRouteDependencies } from './export-jobs';
import { admitExport } from '../export-admission';
import { checkExportScope } from '../export-scope';
import { OperationOutcomeError } from '../../fhir/outcome-error';

/**
 * With authorization on, an export reads only types the token grants read access to: a
 * requested type that is not granted is 403 under strict handling, dropped and reported under
 * lenient; without `_type`, the export covers the granted types.
 */
function typesTheCallerMayRead(scopes: Scopes, request: KickoffRequest, handling: Handling, level: ExportLevel): string[] | undefined {
  if (request.types) {
    const denied = request.types.filter((t) => !scopes.canRead(t));
    if (denied.length > 0 && handling === 'strict') {
      throw new OperationOutcomeError('forbidden', `The access token does not grant read access to ${denied.join(', ')} (send Prefer: handling=lenient to have them left out)`, {
        expression: ['_type'],
      });
    }
    for (const type of denied) {
      request.lenientIssues.push({ severity: 'warning', code: 'forbidden', diagnostics: `${type} is not granted by the access token; left out`, expression: ['_type'] });
    }
    const granted = request.types.filter((t) => scopes.canRead(t));
    if (granted.length === 0) throw new OperationOutcomeError('forbidden', 'The access token grants read access to none of the requested types', { expression: ['_type'] });
    return granted;
  }
  if (scopes.readsEverything) return undefined;
  const exportable = new Set(level === 'system' ? r4ResourceTypes() : patientLevelTypes());
  const granted = scopes.readableTypes().filter((t) => exportable.has(t));
  if (granted.length === 0) throw new OperationOutcomeError('forbidden', 'The access token grants read access to no type this export could hold');
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
    throw new OperationOutcomeError('forbidden', `${diagnostics} (send Prefer: handling=lenient to have them left out)`, { expression: ['includeAssociatedData'] });
  }
  request.lenientIssues.push({ severity: 'warning', code: 'forbidden', diagnostics: `${diagnostics}; left out`, expression: ['includeAssociatedData'] });
  return undefined;
}

export function exportKickoffRouter(deps: BulkExportRouteDependencies): Router<AppState> {
  const router = newRouter();

  const kickOff = (level: ExportLevel, dialect: KickoffDialect) => async (ctx: Context & { state: AppState }) => {
    checkAccept(ctx.get('Accept') || undefined);
    const handling = parsePrefer(ctx.get('Prefer') || undefined);
    // Up to 16 MB: a cohort's `patient` list runs to tens of thousands of references (kept in the store, not in history).
    const raw = ctx.method === 'POST' ? parametersFromBody(await readJsonBody(ctx, 16 * 1024 ** 2)) : parametersFromQuery(ctx.query);
    if (ctx.method === 'GET' && raw.has('patient')) {
      throw OperationOutcomeError.invalid('The patient parameter is accepted only in a POST Parameters body', 'patient');
    }
    const request = parseKickoffParameters(raw, handling, level, dialect);
    if (ctx.state.caller) {
      request.types = typesTheCallerMayRead(ctx.state.caller.scopes, request, handling, level);
      request.associatedProvenance = provenanceTheCallerMayRead(ctx.state.caller.scopes, request, handling);
    }
    const tenant = ctx.state.tenant;
    const store = deps.store?.forTenant(tenant);
    const groupId = level === 'group' ? ctx.params.id : undefined;
    await checkExportScope(store, { groupId, patientIds: request.patients });
    const exportId = newJobId();
    // A patient list is kept once in the store, not in every partition's workflow input.
    const patientList = request.patients && store ? await keepPatientList(store.pool, tenant, exportId, request.patients) : undefined;
    const compartment = level === 'system' ? undefined : { groupId, ...(patientList ? { patientList } : { patientIds: request.patients }) };

    const owner = ownerOf(ctx);
    const input: ExportInput = {
      exportId,
      level,
      owner,
      request: `${ctx.state.fhirBaseUrl}${ctx.path.slice(deps.fhirBasePath.length)}${ctx.querystring ? `?${ctx.querystring}` : ''}`,
      window: { tenant, since: request.since, until: request.until, compartment },
      types: request.types,
      elements: request.elements,
      typeFilters: request.typeFilters,
      associatedProvenance: request.associatedProvenance,
      organizeOutputBy: request.organizeOutputBy,
      allowPartialManifests: request.allowPartialManifests,
      lenientIssues: request.lenientIssues.map((i) => ({ severity: i.severity ?? 'warning', code: i.code, diagnostics: i.diagnostics, expression: i.expression })),
      ...(handling === 'lenient' ? { lenient: true } : {}),
      ...(dialect === 'stu4' ? { manifestShape: 'stu4' as const } : {}),
      tuning: deps.exportSettings,
    };
    await admitExport({ ...deps, pool: deps.store?.pool }, tenant, exportId, () => deps.temporal.start(bulkExport, { taskQueue: deps.taskQueue, workflowId: exportId, args: [input], ...exportStartOptions(input) })).catch(
      async (err: unknown) => {
        if (patientList && store) await forgetPatientList(store.pool, exportId);
        throw err;
      },
    );
    ctx.state.exportStarted = { kind: 'bulk', level };
    ctx.status = 202;
    ctx.set('Content-Location', `${ctx.state.fhirBaseUrl}/bulkstatus/${exportId}`);
    ctx.type = FHIR_JSON;
    ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: `Export ${exportId} started` });
  };

  for (const [path, level] of [['/$export', 'system'], ['/Patient/$export', 'patient'], ['/Group/:id/$export', 'group']] as const) {
    router.get(path, access.token, kickOff(level, 'v2'));
    router.post(path, access.token, kickOff(level, 'v2'));
    // STU4 removed GET kick-off; the IG names a second version of an operation `export-v4` (export.md, "Data Provider Capability Documentation").
    router.post(`${path}-v4`, access.token, kickOff(level, 'stu4'));
    router.get(`${path}-v4`, access.token, (ctx) => {
      ctx.set('Allow', 'POST');
      throw new OperationOutcomeError('not-supported', 'The STU4 kick-off ($export-v4) is POST only, with a Parameters body; GET kick-off is $export', { status: 405 });
    });
  }

  return router;
}
