/**
 * The subjects of a `$sql-export` kick-off, each resolved, named and checked before anything
 * starts: a ViewDefinition compiled (and, for Parquet, every column typed), a SQL subject
 * resolved with its tables and parameters and its SQL prepared over empty tables; the caller's
 * read access on every type read; a `context` that serves no SQL subject refused. Every problem
 * names the subject it belongs to (`subject[i]...`). Checks only: nothing starts here.
 */
import type { Context } from 'koa';
import type { ExportedSqlSubject, ExportedView } from '../contracts/view-export';
import { OperationOutcomeError } from '../fhir/outcome-error';
import { DEFAULT_SQL_EXPORT_LIMITS, type EngineLimits } from '../sql/engine-types';
import { checkResolvedSql, contextByCanonical, refuseUnusedContext, resolveSqlSubject, typesRead } from '../sql/sql-subject';
import type { ResourceStore } from '../store/resource-store';
import type { ViewExportRequest } from '../views/export-request';
import { parquetColumns } from '../views/parquet-columns';
import { compileView } from '../views/view-definition';
import type { AppState } from './app-state';
import { requirePermission } from './authorize';
import { sqlOutcome } from './sql-run';
import { storedByCanonical, viewOf } from './view-subjects';

type AppContext = Context & { state: AppState };

const VIEW_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/** Every subject resolved, named and checked before anything starts: views as ViewDefinitions, SQL subjects with their tables and parameters. */
export async function checkedSubjects(ctx: AppContext, store: ResourceStore, request: ViewExportRequest, sqlLimits: EngineLimits = DEFAULT_SQL_EXPORT_LIMITS): Promise<{ views: ExportedView[]; sqlSubjects: ExportedSqlSubject[]; names: string[]; definitions: Record<string, unknown>[] }> {
  const views: ExportedView[] = [];
  const sqlSubjects: ExportedSqlSubject[] = [];
  const names = new Set<string>();
  /** Each subject's resource, in the request's order (its output name is `[...names][i]`). */
  const definitions: Record<string, unknown>[] = [];
  const context = contextByCanonical(request.context);
  const used = new Set<Record<string, unknown>>();
  /** Names the subject the problems of `work` belong to. */
  const within = async <T>(i: number, work: () => T | Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      if (err instanceof OperationOutcomeError) for (const issue of err.issues) issue.expression = (issue.expression ?? ['']).map((e) => `subject[${i}]${e ? `.${e}` : ''}`);
      throw err;
    }
  };
  for (const [i, { name, subject, parameters }] of request.subjects.entries()) {
    const definition = await viewOf(ctx, store, subject);
    const outputName = name ?? (typeof definition.name === 'string' ? definition.name : undefined);
    if (!outputName || !VIEW_NAME.test(outputName)) {
      throw OperationOutcomeError.invalid(`subject[${i}] needs a name for its output (letters, digits, _; up to 64, starting with a letter), from its name part or the subject's name`, `subject[${i}].name`);
    }
    if (names.has(outputName)) throw OperationOutcomeError.invalid(`Two subjects are named ${outputName}; each output needs its own name`, `subject[${i}].name`);
    names.add(outputName);
    definitions.push(definition);
    if (definition.resourceType === 'Library') {
      const resolved = await within(i, () => resolveSqlSubject(definition, { parameters, context, used }, (type, url, version) => storedByCanonical(ctx, store, type, url, version)));
      for (const type of typesRead(resolved)) requirePermission(ctx, type, 'r');
      // A SQL error is the kick-off's 422, not a failed job later.
      await within(i, () => checkResolvedSql(resolved, sqlLimits).catch((err: unknown) => Promise.reject(sqlOutcome(err))));
      sqlSubjects.push({ name: outputName, ...resolved });
      continue;
    }
    if (parameters) throw OperationOutcomeError.invalid(`subject[${i}] is a ViewDefinition: parameters bind a SQLQuery's placeholders`, `subject[${i}].parameters`);
    const view = await within(i, () => compileView(definition));
    requirePermission(ctx, view.resource, 'r');
    if (request.format === 'parquet') await within(i, () => parquetColumns(view.columns)); // every column's type has a Parquet type
    views.push({ name: outputName, definition, resource: view.resource });
  }
  refuseUnusedContext(request.context, used);
  return { views, sqlSubjects, names: [...names], definitions };
}
