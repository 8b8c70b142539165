/** The ViewDefinition a `$sql-run` or `$sql-export` subject names: inline, or stored (by id or canonical `url|version`). */
import type { Context } from 'koa';
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { ResourceStore } from '../store/resource-store';
import type { ViewSubject } from '../views/run-request';
import type { AppState } from './app-state';
import { requirePermission } from './authorize';

type AppContext = Context & { state: AppState };

/** The subject's ViewDefinition JSON; a stored one needs read permission on ViewDefinition (404 when unknown). */
export async function viewOf(ctx: AppContext, store: ResourceStore, subject: ViewSubject): Promise<Record<string, unknown>> {
  return 'resource' in subject ? subject.resource : storedView(ctx, store, subject);
}

/** The stored ViewDefinition a subject names (read permission on ViewDefinition needed). */
async function storedView(ctx: AppContext, store: ResourceStore, subject: Exclude<ViewSubject, { resource: unknown }>): Promise<Record<string, unknown>> {
  requirePermission(ctx, 'ViewDefinition', 'r');
  if ('id' in subject) {
    const stored = await store.read('ViewDefinition', subject.id);
    if (!stored || stored.deleted || !stored.body) throw OperationOutcomeError.notFound(`ViewDefinition/${subject.id} is not known`);
    return JSON.parse(stored.body) as Record<string, unknown>;
  }
  const matches: Record<string, unknown>[] = [];
  for await (const rows of store.currentResources('ViewDefinition', await store.snapshotTime())) {
    for (const row of rows) {
      const view = JSON.parse(row.body.toString('utf8')) as Record<string, unknown>;
      if (view.url === subject.url && (subject.version === undefined || view.version === subject.version)) matches.push(view);
    }
  }
  const canonical = `${subject.url}${subject.version ? `|${subject.version}` : ''}`;
  if (matches.length === 0) throw OperationOutcomeError.notFound(`No ViewDefinition has the canonical ${canonical}`);
  if (matches.length > 1) throw OperationOutcomeError.invalid(`${matches.length} ViewDefinitions have the canonical ${canonical}; add |version`, 'subjectCanonical');
  return matches[0];
}

