/**
 * `$export` kick-off, the status URL (poll, DELETE) and file downloads. Each export is one
 * `bulkExport` workflow whose id is the job id; status comes from its `status` query, or from
 * its description when no worker answers.
 */
import { randomBytes } from 'node:crypto';
import { createGzip } from 'node:zlib';
import Router from '@koa/router';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Context } from 'koa';
import type { ExportSettings } from '../../config';
import { checkAccept, parametersFromBody, parametersFromQuery, parseKickoffParameters, parsePrefer } from '../../fhir/kickoff-parameters';
import { buildManifest, progressText } from '../../fhir/manifest';
import { operationOutcome } from '../../fhir/operation-outcome';
import type { OutputStore } from '../../output/output-store';
import { DEFAULT_TENANT } from '../../store/resource-store';
import { exportLevelKey, exportOwnerKey, exportSinceKey, exportTenantKey, exportTypesKey } from '../../temporal/search-attributes';
import { bulkExport, statusQuery } from '../../../workflows/bulk-export';
import type { ExportStatus } from '../../../workflows/types';
import type { AppState } from '../app-state';
import { HttpError } from '../http-error';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';
import { readJsonBody } from '../read-json-body';

export interface BulkExportDependencies {
  client: Client;
  taskQueue: string;
  output: OutputStore;
  exportSettings: ExportSettings;
  retryAfterSeconds: number;
  /** Absolute URL of the FHIR base (e.g. http://localhost:8080/fhir). */
  fhirBaseUrl: string;
  /** The store tenant exports read (multi-tenancy maps requests to tenants later). */
  tenant?: string;
}

const JOB_ID = /^[A-Za-z0-9_-]{22}$/;
const FILE_NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.ndjson$/;
const QUERY_DEADLINE_MS = 3000;

const newJobId = () => randomBytes(16).toString('base64url');

export function bulkExportRouter(deps: BulkExportDependencies): Router<AppState> {
  const router = new Router<AppState>();
  const statusUrl = (id: string) => `${deps.fhirBaseUrl}/bulkstatus/${id}`;
  const fileUrl = (key: string) => `${deps.fhirBaseUrl}/bulkfiles/${key}`;

  const kickOff = async (ctx: Context & { state: AppState }) => {
    checkAccept(ctx.get('Accept') || undefined);
    const handling = parsePrefer(ctx.get('Prefer') || undefined);
    const raw = ctx.method === 'POST' ? parametersFromBody(await readJsonBody(ctx)) : parametersFromQuery(ctx.query);
    const request = parseKickoffParameters(raw, handling, 'system');
    const exportId = newJobId();
    const tenant = deps.tenant ?? DEFAULT_TENANT;
    const owner = 'anonymous';
    await deps.client.workflow.start(bulkExport, {
      taskQueue: deps.taskQueue,
      workflowId: exportId,
      args: [
        {
          exportId,
          level: 'system',
          tenant,
          owner,
          request: `${deps.fhirBaseUrl}${ctx.path.slice(ctx.path.indexOf('/$export'))}${ctx.querystring ? `?${ctx.querystring}` : ''}`,
          types: request.types,
          since: request.since,
          until: request.until,
          lenientIssues: request.lenientIssues.map((i) => ({ severity: i.severity ?? 'warning', code: i.code, diagnostics: i.diagnostics, expression: i.expression })),
          tuning: deps.exportSettings,
        },
      ],
      typedSearchAttributes: [
        { key: exportLevelKey, value: 'system' },
        { key: exportOwnerKey, value: owner },
        { key: exportTenantKey, value: tenant },
        { key: exportTypesKey, value: request.types ?? ['*'] },
        ...(request.since ? [{ key: exportSinceKey, value: new Date(request.since) }] : []),
      ],
      memo: { level: 'system', types: request.types ?? 'all', since: request.since ?? null, until: request.until ?? null, owner, tenant },
    });
    ctx.status = 202;
    ctx.set('Content-Location', statusUrl(exportId));
    ctx.type = FHIR_JSON;
    ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: `Export ${exportId} started` });
  };
  router.get('/$export', kickOff);
  router.post('/$export', kickOff);

  /** The export's state, or an HttpError (404 for unknown, cancelled or expired exports). */
  const exportState = async (id: string): Promise<{ running: true; status?: ExportStatus }> => {
    if (!JOB_ID.test(id)) throw HttpError.notFound('No such export');
    const handle = deps.client.workflow.getHandle(id);
    let description;
    try {
      description = await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw HttpError.notFound('No such export');
      throw err;
    }
    if (description.type !== 'bulkExport') throw HttpError.notFound('No such export');
    switch (description.status.name) {
      case 'RUNNING':
        // DELETE is final at once, even before a worker has carried out the cancellation.
        if (description.raw.workflowExtendedInfo?.cancelRequested) throw HttpError.notFound('The export was cancelled');
        break;
      case 'CANCELLED':
      case 'TERMINATED':
        throw HttpError.notFound('The export was cancelled');
      case 'COMPLETED':
        throw new HttpError(404, 'not-found', 'The export has expired and its files were deleted');
      default:
        throw new HttpError(500, 'exception', `The export failed (${description.status.name.toLowerCase()})`);
    }
    try {
      const status = await deps.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(statusQuery));
      return { running: true, status };
    } catch {
      return { running: true }; // no worker answered: still running as far as anyone can tell
    }
  };

  router.get('/bulkstatus/:id', async (ctx) => {
    const { status } = await exportState(ctx.params.id);
    if (!status || status.phase !== 'completed') {
      ctx.status = 202;
      ctx.set('Retry-After', String(deps.retryAfterSeconds));
      ctx.set('X-Progress', status ? progressText(status) : 'in progress');
      ctx.body = '';
      return;
    }
    ctx.status = 200;
    ctx.set('Expires', new Date(status.expiresAt!).toUTCString());
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = buildManifest(status, fileUrl);
  });

  router.delete('/bulkstatus/:id', async (ctx) => {
    await exportState(ctx.params.id);
    await deps.client.workflow.getHandle(ctx.params.id).cancel();
    ctx.status = 202;
    ctx.type = FHIR_JSON;
    ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: 'The export was cancelled; its files are being deleted' });
  });

  router.get('/bulkfiles/:id/:file', async (ctx) => {
    const { id, file } = ctx.params;
    if (!FILE_NAME.test(file)) throw HttpError.notFound('No such file');
    await exportState(id);
    const stream = await deps.output.openReader(`${id}/${file}`);
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
