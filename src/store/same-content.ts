/** Whether two bodies hold the same content: key order and the store's own meta do not count (the fingerprint is in prepared-resource.ts). */
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

/** The resource without what the store sets itself (meta.versionId, meta.lastUpdated). */
function withoutStoreMeta(resource: FhirResourceJson): FhirResourceJson {
  if (!resource.meta) return resource;
  const { versionId: _v, lastUpdated: _l, ...meta } = resource.meta;
  return { ...resource, meta: Object.keys(meta).length > 0 ? meta : undefined };
}

/** Whether two bodies hold the same content, in whatever key order (and the store's meta aside). */
export function sameContent(body: string, other: string): boolean {
  const canonical = (text: string) => canonicalJson(withoutStoreMeta(JSON.parse(text) as FhirResourceJson));
  return canonical(body) === canonical(other);
}
