/**
 * The status URL of an export: polls (202 with Retry-After and progress, throttled; the manifest
 * or its pages when complete; 303 to the result URL under the see-other pattern), the result
 * URL, and DELETE (cancel). Manifests list signed URLs when downloads need no token.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { asStu4Manifest, buildManifest, downloadUrl, manifestPage, progressText, retryAfterSeconds, type BulkManifest, type ManifestItem } from '../../fhir/manifest';
import { operationOutcome } from '../../fhir/operation-outcome';
import type { ExportStatus } from '../../contracts/bulk-export';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { failedJobError } from '../job-state';
import { PollThrottle } from '../poll-throttle';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';
import { exportState, type BulkExportRouteDependencies } from './export-jobs';
import { OperationOutcomeError } from '../../fhir/outcome-error';

export function exportStatusRouter(deps: BulkExportRouteDependencies): Router<AppState> {
  const router = newRouter();
  const throttle = new PollThrottle(deps.pollToleranceMs ?? 1000);
  const seeOther = deps.resultPattern === 'see-other';

  /** The completed manifest (or its page), with Expires. */
  const answerManifest = async (ctx: Context & { state: AppState }, status: ExportStatus, manifest: BulkManifest) => {
    ctx.status = status.phase === 'completed' ? 200 : 202;
    if (status.phase === 'completed') ctx.set('Expires', new Date(status.expiresAt!).toUTCString());
    else ctx.set('X-Progress', progressText(status));
    ctx.type = 'application/json; charset=utf-8';
    const listed = signed ? await withSignedUrls(manifest) : manifest;
    ctx.body = status.manifestShape === 'stu4' ? asStu4Manifest(listed) : listed;
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
    if (!Number.isInteger(page) || page < 1) throw OperationOutcomeError.invalid('page must be a whole number from 1', 'page');
    const statusUrl = `${ctx.state.fhirBaseUrl}/bulkstatus/${ctx.params.id}`;
    const answer = manifestPage(status, page, fileUrl(ctx), (n) => `${statusUrl}?page=${n}`);
    if (answer === 'no-such-page') throw OperationOutcomeError.notFound(`The manifest has no page ${page}`);
    return answer;
  };
  // The URL names job and file; the tenant is the request's, a scheduled run's prefix is in its memo.
  const fileUrl = (ctx: Context & { state: AppState }) => (key: string) => (signed ? key : downloadUrl(ctx.state.fhirBaseUrl)(key));

  router.get('/bulkstatus/:id', access.token, async (ctx) => {
    const client = ctx.state.clientAddress;
    const wait = throttle.secondsTooEarly(ctx.params.id, client); // as of arrival, before the lookup
    const state = await exportState(deps, ctx, ctx.params.id); // unknown, cancelled, expired, not the caller's: 404, never 429
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
    if (state.kind === 'failed') throw failedJobError(state, 'export');

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
      throw OperationOutcomeError.throttled(`Polled too soon: wait ${wait} s (Retry-After) between status requests`, wait);
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
    const state = await exportState(deps, ctx, ctx.params.id);
    if (state.kind === 'failed') throw failedJobError(state, 'export');
    const status = state.status;
    if (!status || status.phase !== 'completed') throw OperationOutcomeError.notFound('The export has no result yet');
    const paged = status.manifestPageFiles ? pageOf(ctx, status) : undefined;
    await answerManifest(ctx, status, paged && paged !== 'not-yet' ? paged.manifest : buildManifest(status, fileUrl(ctx)));
  });

  router.delete('/bulkstatus/:id', access.token, async (ctx) => {
    await exportState(deps, ctx, ctx.params.id); // 404 for gone exports; a failed one can still be deleted
    await deps.temporal.cancel(ctx.params.id);
    ctx.status = 202;
    ctx.type = FHIR_JSON;
    ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: 'The export was cancelled; its files are being deleted' });
  });

  return router;
}
