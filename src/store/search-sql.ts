/**
 * Search conditions on indexed columns (src/fhir/search's `Pushdown`s) as SQL on
 * resource_versions, quoted by pg: the store's half of `_typeFilter` and type searches.
 */
import type { CompiledTypeFilter } from '../fhir/search/type-filter';
import type { LastUpdatedRange, Pushdown } from '../fhir/search/query';
import { literal } from './sql';

function rangeSql(range: LastUpdatedRange): string {
  const bounds = [range.from && `last_updated >= ${literal(range.from)}`, range.to && `last_updated < ${literal(range.to)}`].filter(Boolean);
  if (range.not) return `NOT (${bounds.join(' AND ')})`;
  return bounds.length > 1 ? `(${bounds.join(' AND ')})` : bounds[0] as string;
}

/** One pushed-down clause. */
export function pushdownSql(pushdown: Pushdown): string {
  if (pushdown.column === 'id') return `resource_versions.id IN (${pushdown.anyOf.map(literal).join(', ')})`;
  return `(${pushdown.anyOf.map(rangeSql).join(' OR ')})`;
}

/** Clauses AND-ed (undefined when there are none). */
export const allOfSql = (pushdowns: Pushdown[]): string | undefined => (pushdowns.length > 0 ? pushdowns.map(pushdownSql).join(' AND ') : undefined);

/** A `_typeFilter`'s narrowing: its queries OR-ed, each query's clauses AND-ed (undefined: none). */
export function typeFilterSql(filter: Pick<CompiledTypeFilter, 'pushdown'>): string | undefined {
  return filter.pushdown && `(${filter.pushdown.map((clauses) => `(${clauses.map(pushdownSql).join(' AND ')})`).join(' OR ')})`;
}
