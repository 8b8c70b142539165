/**
 * Everything the store derives from a resource before it writes it, as plain data: the body
 * (its JSON with `resourceType`, `id` and `meta` first, the store's `meta.versionId` and
 * `meta.lastUpdated` filled in per version), a content fingerprint, and the index rows (patient
 * compartments, referenced Practitioners etc., Group members, Provenance targets). Pure, so an
 * import can prepare resources on another thread and hand the results over.
 */
import { createHash, randomUUID } from 'node:crypto';
import { patientCompartmentsOf, REFERENCED_TYPES } from '../fhir/patient-compartment';
import type { FhirResourceJson } from '../fhir/resource-validation';

export interface GroupMemberRow {
  memberType: string;
  memberId: string;
  periodStart: string | null;
  periodEnd: string | null;
  inactive: boolean;
}

export interface PreparedResource {
  resourceType: string;
  id: string;
  /** Fingerprint of the content (everything but meta.versionId and meta.lastUpdated): equal means equal. */
  hash: Uint8Array;
  /** The body is `head` + the store's meta members + `tail`. */
  head: string;
  tail: string;
  /** The patients whose compartments the resource is in. */
  compartments: string[];
  /** For a resource in some compartment: the Practitioners, Organizations, Locations, Medications it references, as `Type/id`. */
  references: string[];
  /** A Group's members. */
  members?: GroupMemberRow[];
  /** A Provenance's targets (`Type/id`) and when it was recorded. */
  provenance?: { recorded: string | null; targets: string[] };
}

/** `{"a":1}` → `,"a":1`; `{}` → `` (members to append after others). */
const members = (json: string) => (json.length > 2 ? `,${json.slice(1, -1)}` : '');

/** A reference to a type Patient/Group exports add, in compact JSON text. */
const REFERENCE_TO_ADDED_TYPE = new RegExp(`"reference":"(?:[^"]*/)?(${REFERENCED_TYPES.join('|')})/([A-Za-z0-9\\-.]{1,64})"`, 'g');
const TARGET_REFERENCE = /([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;
const MEMBER_REFERENCE = /^(?:.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;

/** Prepares a resource for the store; one without an id gets a new one. */
export function prepareResource(resource: FhirResourceJson): PreparedResource {
  // One serialization serves body and fingerprint: serializing twice was the larger part of an import's CPU.
  const { resourceType, id = randomUUID(), meta, ...rest } = resource;
  let metaMembers = '';
  if (meta) {
    const { versionId: _v, lastUpdated: _l, ...otherMeta } = meta;
    metaMembers = members(JSON.stringify(otherMeta));
  }
  const head = `{"resourceType":${JSON.stringify(resourceType)},"id":${JSON.stringify(id)},"meta":{`;
  const tail = `${metaMembers}}${members(JSON.stringify(rest))}}`;
  const compartments = patientCompartmentsOf(resource.id === id ? resource : { ...resource, id });
  const prepared: PreparedResource = {
    resourceType,
    id,
    hash: createHash('sha256').update(head).update(tail).digest(),
    head,
    tail,
    compartments,
    references: compartments.length > 0 ? [...new Set(Array.from(tail.matchAll(REFERENCE_TO_ADDED_TYPE), (m) => `${m[1]}/${m[2]}`))] : [],
  };
  if (resourceType === 'Group') prepared.members = groupMembers(resource);
  if (resourceType === 'Provenance') prepared.provenance = provenanceTargets(resource);
  return prepared;
}

/** The body of one version. */
export function renderBody(prepared: PreparedResource, versionId: string, lastUpdated: string): string {
  return `${prepared.head}"versionId":${JSON.stringify(versionId)},"lastUpdated":"${lastUpdated}"${prepared.tail}`;
}

function groupMembers(group: FhirResourceJson): GroupMemberRow[] {
  const list = Array.isArray(group.member) ? (group.member as Array<{ entity?: { reference?: unknown }; period?: { start?: unknown; end?: unknown }; inactive?: unknown }>) : [];
  const rows: GroupMemberRow[] = [];
  for (const member of list) {
    const match = typeof member.entity?.reference === 'string' ? MEMBER_REFERENCE.exec(member.entity.reference) : null;
    if (!match) continue;
    rows.push({
      memberType: match[1],
      memberId: match[2],
      periodStart: fhirDateTimeAsTimestamp(member.period?.start),
      periodEnd: fhirDateTimeAsTimestamp(member.period?.end),
      inactive: member.inactive === true,
    });
  }
  return rows;
}

function provenanceTargets(provenance: FhirResourceJson): { recorded: string | null; targets: string[] } {
  const list = Array.isArray(provenance.target) ? (provenance.target as Array<{ reference?: unknown }>) : [];
  const targets = new Set<string>();
  for (const target of list) {
    const match = typeof target?.reference === 'string' ? TARGET_REFERENCE.exec(target.reference) : null;
    if (match) targets.add(`${match[1]}/${match[2]}`);
  }
  return { recorded: fhirDateTimeAsTimestamp(provenance.recorded), targets: [...targets] };
}

/** A FHIR date or dateTime as a timestamptz literal (partial dates start at their first day). */
export function fhirDateTimeAsTimestamp(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  if (/^\d{4}$/.test(value)) return `${value}-01-01T00:00:00Z`;
  if (/^\d{4}-\d{2}$/.test(value)) return `${value}-01T00:00:00Z`;
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return `${value}T00:00:00Z`;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value))) {
    return value;
  }
  return null;
}
