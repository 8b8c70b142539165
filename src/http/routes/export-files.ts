/** `[base]/bulkfiles/{export}/{file}`: an export's files for its owner, gzipped when the client accepts it, resumable by range otherwise. */
import type Router from '@koa/router';
import { exportFileKey } from '../../output/file-keys';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { failedJobError } from '../job-state';
import { sendStoredFile } from '../send-file';
import { exportState, type BulkExportRouteDependencies } from './export-jobs';
import { OperationOutcomeError } from '../../fhir/outcome-error';

const FILE_NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.ndjson$/;

export function exportFilesRouter(deps: BulkExportRouteDependencies): Router<AppState> {
  const router = newRouter();

  router.get('/bulkfiles/:id/:file', access.token, async (ctx) => {
    const { id, file } = ctx.params;
    if (!FILE_NAME.test(file)) throw OperationOutcomeError.notFound('No such file');
    const state = await exportState(deps, ctx, id);
    if (state.kind === 'failed') throw failedJobError(state, 'export');
    await sendStoredFile(ctx, deps.output, exportFileKey({ tenant: ctx.state.tenant, exportId: id, outputPrefix: state.outputPrefix }, file), file, 'application/fhir+ndjson');
  });

  return router;
}
