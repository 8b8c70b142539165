/**
 * `$export`: kick-off (export-kickoff.ts), the status URL (export-status.ts) and file downloads
 * (export-files.ts). Each export is one `bulkExport` workflow whose id is the job id; status
 * comes from its `status` query, or from its description when no worker answers.
 */
import type Router from '@koa/router';
import { newRouter } from '../access';
import type { AppState } from '../app-state';
import { exportFilesRouter } from './export-files';
import { exportKickoffRouter } from './export-kickoff';
import { exportStatusRouter } from './export-status';
import type { BulkExportRouteDependencies } from './export-jobs';

/**
 * A tenant may have `maxRunningExports` unfinished exports, `$export` and `$sql-export` together;
 * more is 429 (finished ones never count).
 */
export function bulkExportRouter(deps: BulkExportRouteDependencies): Router<AppState> {
  const router = newRouter();
  for (const routes of [exportKickoffRouter(deps), exportStatusRouter(deps), exportFilesRouter(deps)]) router.use(routes.routes());
  return router;
}
