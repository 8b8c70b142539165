/**
 * The tables a SQL subject needs, in the order to make them: every ViewDefinition it reaches
 * (made from the view runner's rows) and every SQLView (made from its SQL, after the tables
 * that SQL reads). All of them share one database, so a label names one thing in the whole
 * graph; a cycle, a graph deeper than `maxDepth`, or a SQLQuery used as a table is 422; a
 * canonical found nowhere is 404. Pure but for `resolve`.
 */
import { OperationOutcomeError } from '../fhir/outcome-error';
import { readSqlLibrary, sqlLibraryKind, type SqlDependency, type SqlLibrary } from './sql-library';

export interface DependencyPlan {
  /** ViewDefinitions to run, each into the table `label`. */
  views: Array<{ label: string; url: string; view: Record<string, unknown> }>;
  /** SQLViews to make, in order, each into the table `label`. */
  sqlViews: Array<{ label: string; url: string; sql: string }>;
}

/** Finds a dependency's resource (a ViewDefinition or a SQLView Library) by canonical, in `context` or the store. */
export type DependencyResolver = (dependency: SqlDependency) => Promise<Record<string, unknown> | undefined>;

export const MAX_DEPENDENCY_DEPTH = 8;

const canonical = (d: SqlDependency) => (d.version ? `${d.url}|${d.version}` : d.url);

export async function planDependencies(root: SqlLibrary, resolve: DependencyResolver, maxDepth = MAX_DEPENDENCY_DEPTH): Promise<DependencyPlan> {
  const plan: DependencyPlan = { views: [], sqlViews: [] };
  const labelled = new Map<string, string>(); // lower-case label -> canonical it names
  const done = new Set<string>(); // labels made
  const visit = async (library: SqlLibrary, path: string[]): Promise<void> => {
    if (path.length > maxDepth) throw new OperationOutcomeError('processing', `SQLViews nest deeper than ${maxDepth}: ${path.join(' -> ')}`);
    for (const dependency of library.dependencies) {
      const key = dependency.label.toLowerCase();
      const named = canonical(dependency);
      const earlier = labelled.get(key);
      if (earlier !== undefined && earlier !== named) throw new OperationOutcomeError('processing', `Table ${dependency.label} names both ${earlier} and ${named}; one query's tables need one name each`);
      if (path.includes(named)) throw new OperationOutcomeError('processing', `SQLViews depend on each other in a cycle: ${[...path, named].join(' -> ')}`);
      labelled.set(key, named);
      if (done.has(key)) continue;
      const resource = await resolve(dependency);
      if (!resource) throw new OperationOutcomeError('not-found', `No ViewDefinition or SQLView ${named} (table ${dependency.label})`);
      if (resource.resourceType === 'ViewDefinition') {
        plan.views.push({ label: dependency.label, url: named, view: resource });
      } else {
        const kind = sqlLibraryKind(resource);
        if (kind !== 'sql-view') throw new OperationOutcomeError('processing', `${named} (table ${dependency.label}) is ${kind === 'sql-query' ? 'a SQLQuery' : `a ${String(resource.resourceType)}`}; a table is a ViewDefinition or a SQLView`);
        const sqlView = readSqlLibrary(resource, `dependency ${dependency.label}`);
        await visit(sqlView, [...path, named]);
        plan.sqlViews.push({ label: dependency.label, url: named, sql: sqlView.sql });
      }
      done.add(key);
    }
  };
  await visit(root, [root.url ?? 'the query']);
  return plan;
}
