/**
 * `$sql-run` with a SQLQuery or SQLView subject: read the Library, bind its parameters, find
 * its tables (inline `context` first, then the store, by canonical), run each ViewDefinition
 * over the store at one snapshot (narrowed by patient, group and `_since`, each needing read on
 * its resource type), make the SQLViews, run the SQL in the locked engine and stream its rows.
 * The first chunk is read before the status is sent, so a query that fails there is answered
 * with its OperationOutcome. (The SQL subjects of `$sql-export`, Parquet and `fhir` output come
 * next.)
 */
import { Readable } from 'node:stream';
import type { Context } from 'koa';
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { ResourceStore } from '../store/resource-store';
import { streamSnapshotResources } from '../store/snapshot-stream';
import { planDependencies } from '../sql/dependencies';
import { SqlRefused, type EngineLimits } from '../sql/engine-types';
import { readSqlLibrary, sqlParameterValues, type SqlDependency } from '../sql/sql-library';
import { viewTable } from '../sql/view-tables';
import { rowEncoder } from '../views/row-formats';
import type { ViewRunRequest } from '../views/run-request';
import { compileView } from '../views/view-definition';
import type { AppState } from './app-state';
import { requirePermission } from './authorize';
import { storedByCanonical } from './view-subjects';

type AppContext = Context & { state: AppState };
type Json = Record<string, unknown>;

/** A refusal's code is already the OperationOutcome issue code it answers with. */
const asOutcome = (err: unknown) => (err instanceof SqlRefused ? new OperationOutcomeError(err.code, err.message) : err);

/** A result value as the row encoders take it: BIGINT as a number (or text past 2^53), dates as ISO text. */
function plainValue(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plainValue);
  return value;
}

/** `context` resources by canonical (`url` and `url|version`); each needs a url, and one per canonical. */
function contextByCanonical(context: Json[] | undefined): Map<string, Json> {
  const byCanonical = new Map<string, Json>();
  (context ?? []).forEach((resource, i) => {
    if (typeof resource.url !== 'string') throw OperationOutcomeError.invalid(`context[${i}] has no url: a table names what it reads by canonical`, 'context');
    const keys = [resource.url, ...(typeof resource.version === 'string' ? [`${resource.url}|${resource.version}`] : [])];
    if (byCanonical.has(resource.url)) throw OperationOutcomeError.invalid(`Two context resources have the url ${resource.url}`, 'context');
    for (const key of keys) byCanonical.set(key, resource);
  });
  return byCanonical;
}

export async function runSqlSubject(ctx: AppContext, store: ResourceStore, library: Json, request: ViewRunRequest, limits: EngineLimits): Promise<void> {
  if (request.resources) throw OperationOutcomeError.invalid('resource parts give data to a ViewDefinition; a SQL subject reads its tables from the store', 'resource');
  if (request.format === 'parquet') throw new OperationOutcomeError('not-supported', 'Parquet output of SQL subjects is not served yet: ask for json, ndjson or csv', { expression: ['_format'] });
  const query = readSqlLibrary(library);
  const parameters = sqlParameterValues(query.parameters, request.parameters);

  const context = contextByCanonical(request.context);
  const used = new Set<Json>();
  const resolve = async (dependency: SqlDependency): Promise<Json | undefined> => {
    const inline = context.get(dependency.version ? `${dependency.url}|${dependency.version}` : dependency.url);
    if (inline) {
      used.add(inline);
      return inline;
    }
    return (await storedByCanonical(ctx, store, 'ViewDefinition', dependency.url, dependency.version)) ?? (await storedByCanonical(ctx, store, 'Library', dependency.url, dependency.version));
  };
  const plan = await planDependencies(query, resolve);
  const unused = (request.context ?? []).filter((resource) => !used.has(resource));
  if (unused.length > 0) throw OperationOutcomeError.invalid(`context ${unused.map((r) => String(r.url)).join(', ')} matches no table of the query`, 'context');

  // Every table at one snapshot, each view's type readable by the caller.
  const views = plan.views.map(({ label, view }) => ({ label, view: compileView(view) }));
  for (const { view } of views) requirePermission(ctx, view.resource, 'r');
  const transactionTime = await store.snapshotTime();
  const compartment = request.patientId || request.groupId ? { patientIds: request.patientId ? [request.patientId] : undefined, groupId: request.groupId } : undefined;
  const tables = views.map(({ label, view }) =>
    viewTable(label, view, streamSnapshotResources(store.pool, { tenant: store.tenant, resourceType: view.resource, transactionTime, since: request.since, compartment }, {})),
  );

  const { runSql } = await import('../sql/duckdb-engine'); // the addon loads with the first SQL query, not at start
  const result = await runSql({ tables, views: plan.sqlViews.map((v) => ({ name: v.label, sql: v.sql })), sql: query.sql, parameters, limits }).catch((err: unknown) => Promise.reject(asOutcome(err)));
  const chunks = result.chunks[Symbol.asyncIterator]();
  const first = await chunks.next().catch(async (err: unknown) => Promise.reject(asOutcome(err)));
  const encoder = rowEncoder(request.format, result.columns.map((c) => ({ name: c.name, path: '', collection: false, tags: [] })), { header: request.header });
  let left = request.limit ?? Infinity;
  let index = 0;
  const encode = (rows: unknown[][]) => {
    const taken = rows.slice(0, Math.max(0, left));
    left -= taken.length;
    return taken.map((row) => encoder.row(row.map(plainValue), index++)).join('');
  };
  ctx.status = 200;
  ctx.type = encoder.contentType;
  ctx.body = Readable.from(
    (async function* () {
      try {
        yield encoder.start + (first.done ? '' : encode(first.value));
        for (let next = first; !next.done && left > 0; ) {
          next = await chunks.next();
          if (!next.done) yield encode(next.value);
        }
        yield encoder.end;
      } finally {
        await chunks.return?.(undefined); // closes the database, also when the client left early
      }
    })(),
  );
}
