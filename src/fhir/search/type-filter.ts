/**
 * `_typeFilter`: per type, one or more search queries, OR-ed. What every query can say on
 * indexed columns narrows the rows PostgreSQL returns (src/store/search-sql.ts writes it);
 * whatever remains is checked on each resource. Pure.
 */
import type { TypeFilters } from '../../contracts/bulk-export';
import { isKnownResourceType } from '../resource-validation';
import { parseSearchQuery, parseTypedSearch, SearchQueryError, type Pushdown } from './query';

export interface CompiledTypeFilter {
  /** Conditions every match satisfies, OR-ed lists of AND-ed ones (undefined: no narrowing in SQL). */
  pushdown?: Pushdown[][];
  /** True when `pushdown` alone decides: no resource needs to be checked. */
  exact: boolean;
  /** Checks a resource against the queries (always true without queries). */
  matches(resource: object): boolean;
}

/**
 * Splits `_typeFilter` values into queries. The list separator is a comma, but a query's own
 * values may hold commas once the outer URL encoding is decoded, so a new query starts only
 * where a comma is followed by `Type?`.
 */
export function splitTypeFilterValues(values: string[]): string[] {
  return values.flatMap((v) => v.split(/,(?=[A-Z][A-Za-z]+\?)/)).map((q) => q.trim()).filter(Boolean);
}

/** Checks one query; returns its type and query string, or throws SearchQueryError. */
export function checkTypeFilter(text: string): { type: string; query: string } {
  const type = text.split('?')[0];
  if (text.includes('?') && !isKnownResourceType(type)) throw new SearchQueryError(`${type} is not an R4 resource type`);
  const parsed = parseTypedSearch(text);
  return { type: parsed.resourceType, query: text.slice(text.indexOf('?') + 1) };
}

export function compileTypeFilter(type: string, queries: string[] | undefined): CompiledTypeFilter {
  if (!queries || queries.length === 0) return { exact: true, matches: () => true };
  const compiled = queries.map((q) => parseSearchQuery(type, q));
  const perQuery = compiled.map((q) => q.clauses.flatMap((c) => (c.pushdown ? [c.pushdown] : [])));
  // Some query with nothing pushable could match any row: then SQL cannot narrow the OR.
  const pushdown = perQuery.some((conditions) => conditions.length === 0) ? undefined : perQuery;
  return {
    pushdown,
    exact: compiled.every((q) => q.clauses.every((c) => c.pushdown !== undefined)),
    matches: (resource) => compiled.some((q) => q.clauses.every((c) => c.matches(resource))),
  };
}

export { SearchQueryError };
