/**
 * A lake schedule's subjects as each run needs them: incremental views carry their rows'
 * resource key (the view's own `getResourceKey()` column, or LAKE_KEY_COLUMN added first), every
 * subject a digest of what it was made from, and a stored subject the reference a run re-reads.
 * Pure.
 */
import { createHash } from 'node:crypto';
import { LAKE_KEY_COLUMN, type LakeMode, type LakeSubject, type StoredSubjectRef } from '../contracts/lake-export';
import type { ExportedSqlSubject, ExportedView } from '../contracts/view-export';
import type { ViewSubject } from '../views/run-request';

type Json = Record<string, unknown>;

/** What a resource says, without its `meta` (a re-save that changes nothing else is no change). */
export function digestOf(resource: Json): string {
  const { meta: _meta, ...content } = resource;
  return createHash('sha256').update(stableJson(content)).digest('hex');
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Json)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The view's top-level column that is `getResourceKey()` on its own (one row per resource value), if any. */
function ownKeyColumn(definition: Json): string | undefined {
  for (const select of (definition.select ?? []) as Json[]) {
    if (select.forEach || select.forEachOrNull || select.unionAll || select.select) continue;
    for (const column of (select.column ?? []) as Json[]) {
      if (typeof column.path === 'string' && column.path.replace(/\s/g, '') === 'getResourceKey()' && !column.collection) return column.name as string;
    }
  }
  return undefined;
}

/** The view with the key column its incremental table needs, and that column's name. */
export function withKeyColumn(definition: Json): { definition: Json; keyColumn: string } {
  const own = ownKeyColumn(definition);
  if (own) return { definition, keyColumn: own };
  const select = [{ column: [{ name: LAKE_KEY_COLUMN, path: 'getResourceKey()', type: 'string' }] }, ...((definition.select ?? []) as Json[])];
  return { definition: { ...definition, select }, keyColumn: LAKE_KEY_COLUMN };
}

/** The reference a run re-reads for a subject named by id or canonical (inline subjects cannot change). */
export function storedRef(subject: ViewSubject, resource: Json): StoredSubjectRef | undefined {
  if ('resource' in subject) return undefined;
  const type = resource.resourceType === 'Library' ? 'Library' : 'ViewDefinition';
  if ('id' in subject) return { type, id: subject.id, digest: digestOf(resource) };
  return { type, url: subject.url, ...(subject.version ? { version: subject.version } : {}), digest: digestOf(resource) };
}

/** The lake's tables: views (incremental unless `mode` is full) and SQL subjects (always full), in the request's order. */
export function lakeSubjects(
  resolved: { views: ExportedView[]; sqlSubjects: ExportedSqlSubject[]; names: string[]; definitions: Json[] },
  subjects: ViewSubject[],
  mode: LakeMode,
): LakeSubject[] {
  return resolved.names.map((name, i) => {
    const stored = storedRef(subjects[i], resolved.definitions[i]);
    const view = resolved.views.find((v) => v.name === name);
    if (!view) {
      const sql = resolved.sqlSubjects.find((s) => s.name === name)!;
      return { name, sql, mode: 'full', digest: digestOf(sql as unknown as Json), ...(stored ? { stored } : {}) };
    }
    if (mode === 'full') return { name, view, mode, digest: digestOf(view.definition), ...(stored ? { stored } : {}) };
    const keyed = withKeyColumn(view.definition);
    return { name, view: { ...view, definition: keyed.definition }, mode, keyColumn: keyed.keyColumn, digest: digestOf(keyed.definition), ...(stored ? { stored } : {}) };
  });
}
