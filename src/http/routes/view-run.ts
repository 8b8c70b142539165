/**
 * `$sql-run`: runs one ViewDefinition synchronously and streams its rows (JSON, NDJSON or CSV);
 * a SQLQuery or SQLView subject runs through sql-run.ts.
 * Also under the names HFS and Pathling shipped first: `ViewDefinition/$viewdefinition-run`,
 * `ViewDefinition/{id}/$viewdefinition-run`, and `$sqlquery-run` (system, `Library`, `Library/{id}`). The view is checked before anything runs; its rows
 * come from inline `resource` parts or from the store at one snapshot (scoped by patient, group
 * and `_since` as `$export` scopes them). The first page is evaluated before the status is sent,
 * so an evaluation error there is a 422; one found later can only cut the stream short.
 */
import { Readable } from 'node:stream';
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { ResourceStore } from '../../store/resource-store';
import { streamSnapshotResources } from '../../store/snapshot-stream';
import { parquetStream } from '../../views/parquet-writer';
import { parquetColumns } from '../../views/parquet-columns';
import { rowEncoder } from '../../views/row-formats';
import { partsFromBody, partsFromQuery, parseViewRunRequest, type ViewRunRequest } from '../../views/run-request';
import { viewRows, type ViewRow } from '../../views/run-view';
import { compileView, type CompiledView } from '../../views/view-definition';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { requirePermission, requireSomeRead } from '../authorize';
import { readJsonBody } from '../read-json-body';
import { viewOf } from '../view-subjects';
import { runSqlSubject } from '../sql-run';
import { DEFAULT_SQL_ADMISSION, DEFAULT_SQL_LIMITS, type EngineLimits, type SqlAdmissionLimits } from '../../sql/engine-types';
import { SqlAdmission } from '../sql-admission';
import { OperationOutcomeError } from '../../fhir/outcome-error';

type AppContext = Context & { state: AppState };

/** Request bodies may carry the data inline: allow more than the default 1 MiB. */
const RUN_BODY_LIMIT = 32 * 1024 * 1024;

/** Resources in batches: the inline ones at once, else the store's at one snapshot. */
async function* resourceBatches(store: ResourceStore, view: CompiledView, request: ViewRunRequest): AsyncGenerator<Record<string, unknown>[]> {
  if (request.resources) {
    yield request.resources;
    return;
  }
  const compartment = request.patientId || request.groupId ? { patientIds: request.patientId ? [request.patientId] : undefined, groupId: request.groupId } : undefined;
  const scope = { tenant: store.tenant, resourceType: view.resource, transactionTime: await store.snapshotTime(), since: request.since, compartment };
  yield* streamSnapshotResources(store.pool, scope, {});
}

/** Row batches, stopping at `limit` rows. */
async function* rowBatches(view: CompiledView, batches: AsyncIterable<Record<string, unknown>[]>, limit = Infinity): AsyncGenerator<ViewRow[]> {
  let left = limit;
  for await (const resources of batches) {
    const rows: ViewRow[] = [];
    for (const resource of resources) {
      for (const row of viewRows(view, resource)) {
        rows.push(row);
        if (--left === 0) break;
      }
      if (left === 0) break;
    }
    if (rows.length > 0) yield rows;
    if (left === 0) return;
  }
}

export function viewRunRouter(deps: { store: ResourceStore; sqlLimits?: EngineLimits; sqlAdmission?: SqlAdmissionLimits }): Router<AppState> {
  const router = newRouter();
  const admission = new SqlAdmission(deps.sqlAdmission ?? DEFAULT_SQL_ADMISSION);

  const run = async (ctx: AppContext) => {
    requireSomeRead(ctx);
    const parts = ctx.method === 'POST' ? partsFromBody(await readJsonBody(ctx, RUN_BODY_LIMIT)) : partsFromQuery(ctx.query);
    const request = parseViewRunRequest(parts, ctx.params.id === undefined ? undefined : { id: ctx.params.id, type: ctx.path.includes('/Library/') ? 'Library' : 'ViewDefinition' });
    const store = deps.store.forTenant(ctx.state.tenant);
    const raw = await viewOf(ctx, store, request.subject);
    if (raw.resourceType === 'Library') return runSqlSubject(ctx, store, raw, request, deps.sqlLimits ?? DEFAULT_SQL_LIMITS, admission);
    if (request.parameters) throw OperationOutcomeError.invalid('parameters bind a SQLQuery\'s placeholders; a ViewDefinition takes none', 'parameters');
    if (request.context) throw OperationOutcomeError.invalid('context gives a SQL subject its tables; a ViewDefinition needs none', 'context');
    if (request.format === 'fhir') throw OperationOutcomeError.invalid('_format=fhir types the columns of a SQL result; a ViewDefinition runs as json, ndjson, csv or parquet', '_format');
    const view = compileView(raw);
    requirePermission(ctx, view.resource, 'r');

    if (request.format === 'parquet') parquetColumns(view.columns); // a column without a Parquet type: 400 now
    const batches = rowBatches(view, resourceBatches(store, view, request), request.limit);
    const first = await batches.next(); // evaluation errors in the first page still get their 422
    ctx.status = 200;
    if (request.format === 'parquet') {
      ctx.type = 'application/vnd.apache.parquet';
      ctx.body = parquetStream(
        view.columns,
        (async function* () {
          if (first.done) return;
          yield first.value;
          yield* batches;
        })(),
      );
      return;
    }
    const encoder = rowEncoder(request.format as Exclude<typeof request.format, 'parquet' | 'fhir'>, view.columns, { header: request.header });
    let index = 0;
    const encode = (rows: ViewRow[]) => rows.map((row) => encoder.row(row, index++)).join('');
    ctx.type = encoder.contentType;
    ctx.body = Readable.from(
      (async function* () {
        yield encoder.start + (first.done ? '' : encode(first.value));
        if (!first.done) for await (const rows of batches) yield encode(rows);
        yield encoder.end;
      })(),
    );
  };

  // $sql-run, and the names clients shipped before SQL on FHIR settled on it.
  for (const path of ['/$sql-run', '/ViewDefinition/$viewdefinition-run', '/ViewDefinition/:id/$viewdefinition-run', '/$sqlquery-run', '/Library/$sqlquery-run', '/Library/:id/$sqlquery-run']) {
    router.get(path, access.token, run);
    router.post(path, access.token, run);
  }
  return router;
}
