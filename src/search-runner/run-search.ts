/**
 * A type search over the current resources: the filter parameters compiled with the R4 search
 * engine (SQL where it can, each resource otherwise), counted in full for `total`, one page kept.
 * Pages are read at one snapshot instant (`at`), so paging through a changing store is stable.
 */
import type { ElementsSelection } from '../contracts/bulk-export';
import { keptElements, subsetResource } from '../fhir/elements';
import { parseSearchQuery } from '../fhir/search/query';
import type { ResourceStore } from '../store/resource-store';
import { allOfSql } from '../store/search-sql';
import { rowCursor } from '../store/snapshot-stream';

export interface TypeSearch {
  resourceType: string;
  /** The filter parameters as a raw (URL-encoded) query string; empty for all resources. */
  filter: string;
  count: number;
  offset: number;
  /** The snapshot instant of earlier pages (a new search takes the current one). */
  at?: string;
  /** `_summary=count`: the total only. */
  countOnly?: boolean;
  elements?: ElementsSelection;
}

export interface TypeSearchResult {
  total: number;
  at: string;
  /** The page's resources, as JSON text. */
  page: Array<{ id: string; json: string }>;
}

export async function runTypeSearch(store: ResourceStore, search: TypeSearch): Promise<TypeSearchResult> {
  const query = search.filter ? parseSearchQuery(search.resourceType, search.filter) : undefined;
  const clauses = query?.clauses ?? [];
  const residual = clauses.filter((c) => c.pushdown === undefined);
  const sql = allOfSql(clauses.flatMap((c) => (c.pushdown ? [c.pushdown] : [])));
  const keep = keptElements(search.elements, search.resourceType);
  const keepSet = keep && new Set(keep);
  const at = search.at ?? (await store.snapshotTime());

  let total = 0;
  const page: TypeSearchResult['page'] = [];
  for await (const rows of store.currentResources(search.resourceType, at, sql)) {
    for (const row of rows) {
      const wanted = total >= search.offset && page.length < search.count && !search.countOnly;
      if (residual.length === 0 && !wanted) {
        total++;
        continue;
      }
      const text = row.body.toString('utf8');
      const resource = residual.length > 0 || keepSet ? (JSON.parse(text) as Record<string, unknown>) : undefined;
      if (resource && !residual.every((c) => c.matches(resource))) continue;
      if (total >= search.offset && page.length < search.count && !search.countOnly) {
        page.push({ id: (resource?.id as string | undefined) ?? rowCursor(row).id, json: keepSet ? JSON.stringify(subsetResource(resource!, keepSet)) : text });
      }
      total++;
    }
  }
  return { total, at, page };
}
