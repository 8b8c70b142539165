/** A stored ViewDefinition or Library by its canonical URL (and version). */
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { ResourceStore } from './resource-store';

type Json = Record<string, unknown>;

/** The current resource of `type` with this canonical (the only one, or the one of `version`); two without a version to tell them apart is 400. */
export async function findByCanonical(store: ResourceStore, type: 'ViewDefinition' | 'Library', url: string, version?: string): Promise<Json | undefined> {
  const matches: Json[] = [];
  for await (const rows of store.currentResources(type, await store.snapshotTime())) {
    for (const row of rows) {
      const resource = JSON.parse(row.body.toString('utf8')) as Json;
      if (resource.url === url && (version === undefined || resource.version === version)) matches.push(resource);
    }
  }
  if (matches.length > 1) throw OperationOutcomeError.invalid(`${matches.length} resources of type ${type} have the canonical ${url}; add |version`, 'subjectCanonical');
  return matches[0];
}
