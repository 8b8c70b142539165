/**
 * How a resource is stored: its JSON with `resourceType`, `id` and `meta` first and the store's
 * `meta.versionId` and `meta.lastUpdated` leading meta. The JSON of the rest is made once and
 * serves both the body and the content fingerprint: serializing a resource twice (once to
 * fingerprint it, once to store it) was the larger part of an import's CPU.
 */
import { createHash } from 'node:crypto';
import type { FhirResourceJson } from '../fhir/resource-validation';

export interface StoredBody {
  /** Fingerprint of the content (everything but meta.versionId and meta.lastUpdated): equal means equal. */
  hash: Buffer;
  /** The body of a version. */
  render(versionId: string, lastUpdated: string): string;
}

/** `{"a":1}` → `,"a":1`; `{}` → `` (members to append after others). */
const members = (json: string) => (json.length > 2 ? `,${json.slice(1, -1)}` : '');

export function storedBody(resource: FhirResourceJson & { id: string }): StoredBody {
  const { resourceType, id, meta, ...rest } = resource;
  let metaMembers = '';
  if (meta) {
    const { versionId: _v, lastUpdated: _l, ...otherMeta } = meta;
    metaMembers = members(JSON.stringify(otherMeta));
  }
  const head = `{"resourceType":${JSON.stringify(resourceType)},"id":${JSON.stringify(id)},"meta":{`;
  const tail = `${metaMembers}}${members(JSON.stringify(rest))}}`;
  return {
    hash: createHash('sha256').update(head).update(tail).digest(),
    render: (versionId, lastUpdated) => `${head}"versionId":${JSON.stringify(versionId)},"lastUpdated":"${lastUpdated}"${tail}`,
  };
}
