/**
 * `_typeFilter`: per type, one or more search queries, OR-ed. What every query can say in SQL
 * narrows the rows PostgreSQL returns; whatever remains is checked on each resource.
 */
import { isKnownResourceType } from '../resource-validation';
import { parseSearchQuery, parseTypedSearch, SearchQueryError } from './query';

/** Query strings (after `?`) per resource type, as they travel in workflow input. */
export type TypeFilters = Record<string, string[]>;

export interface CompiledTypeFilter {
  /** A condition on resource_versions every match satisfies (undefined: no narrowing in SQL). */
  sql?: string;
  /** True when `sql` alone decides: no resource needs to be checked. */
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
  const perQuery = compiled.map((q) => q.clauses.flatMap((c) => (c.sql ? [c.sql] : [])));
  // Some query with nothing pushable could match any row: then SQL cannot narrow the OR.
  const sql = perQuery.some((conditions) => conditions.length === 0) ? undefined : `(${perQuery.map((c) => `(${c.join(' AND ')})`).join(' OR ')})`;
  return {
    sql,
    exact: compiled.every((q) => q.clauses.every((c) => c.sql !== undefined)),
    matches: (resource) => compiled.some((q) => q.clauses.every((c) => c.matches(resource))),
  };
}

export { SearchQueryError };
