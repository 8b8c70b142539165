import { createHash } from 'node:crypto';
import type { FhirResourceJson } from '../fhir/resource-validation';

/** JSON with object keys sorted, so the same content always gives the same text. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + canonicalJson(value[i] === undefined ? null : value[i]);
    return out + ']';
  }
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object).sort();
  let out = '{';
  for (const key of keys) {
    const child = object[key];
    if (child === undefined) continue;
    out += (out.length > 1 ? ',' : '') + JSON.stringify(key) + ':' + canonicalJson(child);
  }
  return out + '}';
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
