import { r4ResourceTypes } from './definitions';

/** The smallest shape the store accepts: a JSON object of a known R4 type with a valid id. */
export interface FhirResourceJson {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string; [key: string]: unknown };
  [element: string]: unknown;
}

export class InvalidResourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidResourceError';
  }
}

export const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** Resources beyond R4 the store keeps like any other: SQL on FHIR's ViewDefinition. */
export const ADDITIONAL_RESOURCE_TYPES: ReadonlySet<string> = new Set(['ViewDefinition']);

export function isKnownResourceType(type: string): boolean {
  return r4ResourceTypes().has(type) || ADDITIONAL_RESOURCE_TYPES.has(type);
}

/** Refuses what cannot be stored, with a message that says why. */
export function checkResource(value: unknown): FhirResourceJson {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidResourceError('A resource must be a JSON object');
  }
  const resource = value as Record<string, unknown>;
  if (typeof resource.resourceType !== 'string' || resource.resourceType === '') {
    throw new InvalidResourceError('The resource has no resourceType');
  }
  if (!isKnownResourceType(resource.resourceType)) {
    throw new InvalidResourceError(`Unknown resource type "${resource.resourceType}" (not an R4 resource type, nor ${[...ADDITIONAL_RESOURCE_TYPES].join(', ')})`);
  }
  if (resource.id !== undefined && (typeof resource.id !== 'string' || !FHIR_ID.test(resource.id))) {
    throw new InvalidResourceError(
      `Invalid id ${JSON.stringify(resource.id)}: 1-64 characters of A-Z, a-z, 0-9, '-' and '.'`,
    );
  }
  if (resource.meta !== undefined && (resource.meta === null || typeof resource.meta !== 'object' || Array.isArray(resource.meta))) {
    throw new InvalidResourceError('meta must be a JSON object');
  }
  return resource as FhirResourceJson;
}
