/**
 * A SQLQuery or SQLView subject, from the Library to its result, for `$sql-run` and for an
 * export's SQL subject alike: resolve it (its parameters bound to their declared types, its
 * tables found in the inline `context` first, then through `stored`, by canonical), and run it
 * (each ViewDefinition over the resources it is handed, then the SQLViews, then the SQL, in a
 * fresh locked engine). The engine's addon loads with the first run, not with this module.
 */
import { OperationOutcomeError } from '../fhir/outcome-error';
import { compileView } from '../views/view-definition';
import { planDependencies } from './dependencies';
import type { EngineLimits, SqlParameter, SqlResult } from './engine-types';
import { readSqlLibrary, sqlParameterValues, type SqlDependency } from './sql-library';
import { viewTable } from './view-tables';

type Json = Record<string, unknown>;

/** What runs: the SQL, its bound parameters and every table it needs, resolved once (at kick-off for an export). */
export interface ResolvedSqlSubject {
  sql: string;
  parameters: SqlParameter[];
  /** ViewDefinitions, each made into the table `label`. */
  views: Array<{ label: string; definition: Json }>;
  /** SQLViews, in the order to make them. */
  sqlViews: Array<{ label: string; sql: string }>;
}

/** Finds a stored ViewDefinition or Library by canonical (undefined when none). */
export type StoredByCanonical = (type: 'ViewDefinition' | 'Library', url: string, version?: string) => Promise<Json | undefined>;

/** `context` resources by canonical (`url` and `url|version`); each needs a url, and one per url. */
export function contextByCanonical(context: readonly Json[] | undefined): Map<string, Json> {
  const byCanonical = new Map<string, Json>();
  (context ?? []).forEach((resource, i) => {
    if (typeof resource.url !== 'string') throw OperationOutcomeError.invalid(`context[${i}] has no url: a table names what it reads by canonical`, 'context');
    if (byCanonical.has(resource.url)) throw OperationOutcomeError.invalid(`Two context resources have the url ${resource.url}`, 'context');
    byCanonical.set(resource.url, resource);
    if (typeof resource.version === 'string') byCanonical.set(`${resource.url}|${resource.version}`, resource);
  });
  return byCanonical;
}

/** A `context` resource that no SQL subject's table took is a mistake of the caller's (400). */
export function refuseUnusedContext(context: readonly Json[] | undefined, used: ReadonlySet<Json>): void {
  const unused = (context ?? []).filter((resource) => !used.has(resource));
  if (unused.length > 0) throw OperationOutcomeError.invalid(`context ${unused.map((r) => String(r.url)).join(', ')} matches no table of a SQL subject`, 'context');
}

/**
 * The subject resolved; `used` collects the context resources it took, so the caller can refuse
 * a context that serves no subject (400). A table found nowhere is 404 (dependencies.ts).
 */
export async function resolveSqlSubject(library: Json, input: { parameters?: Json; context: Map<string, Json>; used: Set<Json> }, stored: StoredByCanonical): Promise<ResolvedSqlSubject> {
  const query = readSqlLibrary(library);
  const parameters = sqlParameterValues(query.parameters, input.parameters);
  const resolve = async (dependency: SqlDependency): Promise<Json | undefined> => {
    const inline = input.context.get(dependency.version ? `${dependency.url}|${dependency.version}` : dependency.url);
    if (inline) {
      input.used.add(inline);
      return inline;
    }
    return (await stored('ViewDefinition', dependency.url, dependency.version)) ?? (await stored('Library', dependency.url, dependency.version));
  };
  const plan = await planDependencies(query, resolve);
  for (const { label, view } of plan.views) {
    try {
      compileView(view);
    } catch (err) {
      if (err instanceof OperationOutcomeError) for (const issue of err.issues) issue.expression = (issue.expression ?? ['']).map((e) => `table ${label}${e ? `.${e}` : ''}`);
      throw err;
    }
  }
  return { sql: query.sql, parameters, views: plan.views.map(({ label, view }) => ({ label, definition: view })), sqlViews: plan.sqlViews.map(({ label, sql }) => ({ label, sql })) };
}

/** Checks the SQL as the engine sees it (one SELECT over the tables, its parameters declared) over empty tables: nothing runs. */
export async function checkResolvedSql(subject: ResolvedSqlSubject, limits: EngineLimits): Promise<void> {
  await runResolvedSql(subject, () => (async function* () {})(), limits, { dryRun: true });
}

/** The resource types the subject's views read: each needs the caller's read permission. */
export const typesRead = (subject: ResolvedSqlSubject): string[] => [...new Set(subject.views.map(({ definition }) => compileView(definition).resource))];

/**
 * Runs the subject over `resourcesOf(type)` (the resources each view reads, in batches, all at
 * one snapshot). The result streams; `signal` stops it.
 */
export async function runResolvedSql(
  subject: ResolvedSqlSubject,
  resourcesOf: (resourceType: string) => AsyncIterable<Json[]>,
  limits: EngineLimits,
  options: { dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<SqlResult> {
  const tables = subject.views.map(({ label, definition }) => {
    const view = compileView(definition);
    return viewTable(label, view, resourcesOf(view.resource));
  });
  const { runSql } = await import('./duckdb-engine'); // the addon loads with the first SQL query, not at start
  return runSql({ tables, views: subject.sqlViews.map((v) => ({ name: v.label, sql: v.sql })), sql: subject.sql, parameters: subject.parameters, limits, ...options });
}
