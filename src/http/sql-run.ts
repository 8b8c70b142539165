/**
 * `$sql-run` with a SQLQuery or SQLView subject: read the Library, bind its parameters, find
 * its tables (inline `context` first, then the store, by canonical), run each ViewDefinition
 * over the store at one snapshot (narrowed by patient, group and `_since`, each needing read on
 * its resource type), make the SQLViews, run the SQL in the locked engine and answer its rows.
 * Bounded on every axis: at most SQL_MAX_CONCURRENT queries at once (per tenant too), one time
 * limit for the whole request, the row and byte caps checked while the engine makes the rows,
 * the query stopped when its client goes away; the whole answer is ready before the status is
 * sent, so every refusal is an OperationOutcome. Parquet takes its column types from the
 * result's; `fhir` types each value by its SQL type (a nested value has none: 422).
 */
import { Readable } from 'node:stream';
import type { Context } from 'koa';
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { ResourceStore } from '../store/resource-store';
import { streamSnapshotResources } from '../store/snapshot-stream';
import { SqlRefused, type EngineLimits } from '../sql/engine-types';
import { fhirRowsEncoder, writerColumns } from '../sql/result-columns';
import { contextByCanonical, refuseUnusedContext, resolveSqlSubject, runResolvedSql, typesRead, type ResolvedSqlSubject } from '../sql/sql-subject';
import type { SqlAdmission } from './sql-admission';
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

const timedOut = () => new OperationOutcomeError('timeout', 'The query ran past its time limit and was stopped');

export async function runSqlSubject(ctx: AppContext, store: ResourceStore, library: Json, request: ViewRunRequest, limits: EngineLimits, admission: SqlAdmission): Promise<void> {
  const deadline = Date.now() + limits.timeoutMs; // the whole request: tables, query, encoding
  if (request.resources) throw OperationOutcomeError.invalid('resource parts give data to a ViewDefinition; a SQL subject reads its tables from the store', 'resource');
  const context = contextByCanonical(request.context);
  const used = new Set<Json>();
  const subject = await resolveSqlSubject(library, { parameters: request.parameters, context, used }, (type, url, version) => storedByCanonical(ctx, store, type, url, version));
  refuseUnusedContext(request.context, used);
  for (const type of typesRead(subject)) requirePermission(ctx, type, 'r');

  const release = admission.enter(ctx.state.tenant);
  const client = new AbortController();
  const onClose = () => {
    if (!ctx.res.writableFinished) client.abort(new OperationOutcomeError('incomplete', 'The client closed the connection before the result was ready', { status: 499 }));
  };
  const socket = ctx.req.socket; // a client that leaves closes it; the request itself has long been read
  socket.once('close', onClose);
  try {
    const body = await resultBody(store, subject, request, limits, deadline, client.signal);
    ctx.status = 200;
    ctx.type = body.contentType;
    ctx.body = Readable.from(body.parts);
  } finally {
    release();
    socket.off('close', onClose);
  }
}

/**
 * Every row of the result (or `_limit` of them) taken from the engine while it makes them,
 * refused at the row or byte cap, then encoded, all before the status is sent: a refusal is an
 * OperationOutcome, never a cut body. Tables are read at one snapshot.
 */
async function resultBody(store: ResourceStore, subject: ResolvedSqlSubject, request: ViewRunRequest, limits: EngineLimits, deadline: number, signal: AbortSignal): Promise<{ contentType: string; parts: Array<string | Buffer> }> {
  const transactionTime = await store.snapshotTime();
  const compartment = request.patientId || request.groupId ? { patientIds: request.patientId ? [request.patientId] : undefined, groupId: request.groupId } : undefined;
  const resourcesOf = (resourceType: string) => streamSnapshotResources(store.pool, { tenant: store.tenant, resourceType, transactionTime, since: request.since, compartment }, {});
  const limited = request.limit !== undefined && request.limit <= limits.maxResultRows;
  const remaining = () => deadline - Date.now();
  if (remaining() <= 0) throw timedOut();
  const engineLimits = { ...limits, timeoutMs: remaining(), maxResultRows: limited ? Infinity : limits.maxResultRows };
  const result = await runResolvedSql(subject, resourcesOf, engineLimits, { signal }).catch((err: unknown) => Promise.reject(sqlOutcome(err)));
  const chunks = result.chunks[Symbol.asyncIterator]();
  let encoder;
  try {
    encoder = request.format === 'parquet' ? undefined : request.format === 'fhir' ? fhirRowsEncoder(result.columns) : rowEncoder(request.format, writerColumns(result.columns), { header: request.header });
  } catch (err) {
    await result.close();
    throw err;
  }
  const rows: unknown[][] = [];
  let left = request.limit ?? Infinity;
  try {
    for (let next = await chunks.next(); !next.done && left > 0; next = await chunks.next()) {
      const taken = next.value.length > left ? next.value.slice(0, left) : next.value;
      left -= taken.length;
      for (const row of taken) rows.push(row);
    }
  } catch (err) {
    throw sqlOutcome(err);
  } finally {
    await result.close(); // the database and its spill files go before the answer is encoded
  }
  const checkTime = () => {
    if (remaining() <= 0) throw timedOut();
  };
  if (!encoder) {
    const parts: Buffer[] = [];
    for await (const part of parquetStream(writerColumns(result.columns), (async function* () {
      yield rows;
    })())) {
      checkTime();
      parts.push(part as Buffer);
    }
    return { contentType: 'application/vnd.apache.parquet', parts };
  }
  const parts: string[] = [encoder.start];
  for (let i = 0; i < rows.length; i += ENCODE_BATCH) {
    checkTime();
    parts.push(rows.slice(i, i + ENCODE_BATCH).map((row, j) => encoder.row(row, i + j)).join(''));
  }
  parts.push(encoder.end);
  checkTime();
  return { contentType: encoder.contentType, parts };
}

/** Rows encoded between two looks at the clock. */
const ENCODE_BATCH = 1000;
