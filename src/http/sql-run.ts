/**
 * `$sql-run` with a SQLQuery or SQLView subject: read the Library, bind its parameters, find
 * its tables (inline `context` first, then the store, by canonical), run each ViewDefinition
 * over the store at one snapshot (narrowed by patient, group and `_since`, each needing read on
 * its resource type), make the SQLViews, run the SQL in the locked engine and stream its rows.
 * The first chunk is read before the status is sent, so a query that fails there is answered
 * with its OperationOutcome. Parquet takes its column types from the result's; `fhir` types
 * each value by its SQL type (a nested value has none: 422).
 */
import { Readable } from 'node:stream';
import type { Context } from 'koa';
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { ResourceStore } from '../store/resource-store';
import { streamSnapshotResources } from '../store/snapshot-stream';
import { SqlRefused, type EngineLimits } from '../sql/engine-types';
import { fhirRowsEncoder, writerColumns } from '../sql/result-columns';
import { contextByCanonical, refuseUnusedContext, resolveSqlSubject, runResolvedSql, typesRead } from '../sql/sql-subject';
import { parquetStream } from '../views/parquet-writer';
import { rowEncoder } from '../views/row-formats';
import type { ViewRunRequest } from '../views/run-request';
import type { AppState } from './app-state';
import { requirePermission } from './authorize';
import { storedByCanonical } from './view-subjects';

type AppContext = Context & { state: AppState };
type Json = Record<string, unknown>;

/** A refusal's code is already the OperationOutcome issue code it answers with. */
export const sqlOutcome = (err: unknown) => (err instanceof SqlRefused ? new OperationOutcomeError(err.code, err.message) : err);

export async function runSqlSubject(ctx: AppContext, store: ResourceStore, library: Json, request: ViewRunRequest, limits: EngineLimits): Promise<void> {
  if (request.resources) throw OperationOutcomeError.invalid('resource parts give data to a ViewDefinition; a SQL subject reads its tables from the store', 'resource');
  const context = contextByCanonical(request.context);
  const used = new Set<Json>();
  const subject = await resolveSqlSubject(library, { parameters: request.parameters, context, used }, (type, url, version) => storedByCanonical(ctx, store, type, url, version));
  refuseUnusedContext(request.context, used);
  for (const type of typesRead(subject)) requirePermission(ctx, type, 'r');

  // Every table at one snapshot. Without a _limit under the cap, the engine holds the result
  // whole first, so a result over the cap is refused before any of it is sent.
  const transactionTime = await store.snapshotTime();
  const compartment = request.patientId || request.groupId ? { patientIds: request.patientId ? [request.patientId] : undefined, groupId: request.groupId } : undefined;
  const resourcesOf = (resourceType: string) => streamSnapshotResources(store.pool, { tenant: store.tenant, resourceType, transactionTime, since: request.since, compartment }, {});
  const limited = request.limit !== undefined && request.limit <= limits.maxResultRows;
  const result = await runResolvedSql(subject, resourcesOf, limited ? { ...limits, maxResultRows: Infinity } : limits, { materialise: !limited }).catch((err: unknown) => Promise.reject(sqlOutcome(err)));
  const chunks = result.chunks[Symbol.asyncIterator]();
  let encoder;
  try {
    encoder = request.format === 'parquet' ? undefined : request.format === 'fhir' ? fhirRowsEncoder(result.columns) : rowEncoder(request.format, writerColumns(result.columns), { header: request.header });
  } catch (err) {
    await chunks.return?.(undefined);
    throw err;
  }
  let left = request.limit ?? Infinity;
  async function* limitedChunks(): AsyncGenerator<unknown[][]> {
    try {
      for (let next = await chunks.next(); !next.done && left > 0; next = await chunks.next()) {
        const taken = next.value.length > left ? next.value.slice(0, left) : next.value;
        left -= taken.length;
        yield taken;
      }
    } finally {
      await chunks.return?.(undefined); // closes the database, also when the client left early
    }
  }
  const rows = limitedChunks();
  const first = await rows.next().catch(async (err: unknown) => Promise.reject(sqlOutcome(err)));
  ctx.status = 200;

  if (!encoder) {
    ctx.type = 'application/vnd.apache.parquet';
    ctx.body = parquetStream(
      writerColumns(result.columns),
      (async function* () {
        for (let next = first; !next.done; next = await rows.next()) yield next.value;
      })(),
    );
    return;
  }
  let index = 0;
  const encode = (batch: unknown[][]) => batch.map((row) => encoder.row(row, index++)).join('');
  ctx.type = encoder.contentType;
  ctx.body = Readable.from(
    (async function* () {
      yield encoder.start + (first.done ? '' : encode(first.value));
      for (let next = await rows.next(); !next.done; next = await rows.next()) yield encode(next.value);
      yield encoder.end;
    })(),
  );
}
