import { createHash } from 'node:crypto';
import type { FhirResourceJson } from '../fhir/resource-validation';

/** JSON with object keys sorted, so the same content always gives the same text. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * Hash of a resource's content, ignoring what the store itself sets (meta.versionId,
 * meta.lastUpdated) and key order: equal hashes mean an update changes nothing.
 */
export function contentHash(resource: FhirResourceJson): Buffer {
  let content: FhirResourceJson = resource;
  if (resource.meta) {
    const { versionId: _v, lastUpdated: _l, ...meta } = resource.meta;
    content = { ...resource, meta: Object.keys(meta).length > 0 ? meta : undefined };
  }
  return createHash('sha256').update(canonicalJson(content)).digest();
}
