/**
 * Which patients' compartments a resource belongs to, per the R4 Patient CompartmentDefinition:
 * for each resource type, its compartment search parameters, and for each parameter the
 * element paths of its SearchParameter expression (e.g. Observation.subject, Observation.performer).
 */
import { patientCompartmentDefinition, r4SearchParameters } from './definitions';

type Json = unknown;

/** Element paths per resource type whose Patient references put a resource in that patient's compartment. */
export type CompartmentPaths = ReadonlyMap<string, ReadonlyArray<readonly string[]>>;

/**
 * Turns one `|`-separated SearchParameter expression into the element paths that belong to
 * `resourceType`. Supports the forms the compartment parameters use: `Type.a.b` and
 * `Type.a.b.where(resolve() is Patient)` (the filter is applied by keeping only Patient references).
 */
export function elementPathsOf(expression: string, resourceType: string): string[][] {
  const paths: string[][] = [];
  for (const raw of expression.split('|')) {
    const part = raw.trim().replace(/^\((.*)\)$/, '$1').replace(/\.where\(resolve\(\) is [A-Za-z]+\)$/, '');
    if (!part.startsWith(`${resourceType}.`)) continue;
    const segments = part.split('.').slice(1);
    if (segments.length === 0 || !segments.every((s) => /^[A-Za-z][A-Za-z0-9]*$/.test(s))) {
      throw new Error(`unsupported compartment expression for ${resourceType}: ${raw.trim()}`);
    }
    paths.push(segments);
  }
  return paths;
}

let compiled: CompartmentPaths | undefined;

/** The compartment paths of every resource type, compiled once from the published definitions. */
export function patientCompartmentPaths(): CompartmentPaths {
  if (compiled) return compiled;
  const expressions = new Map<string, string>();
  for (const sp of r4SearchParameters()) {
    for (const base of sp.base) if (sp.expression) expressions.set(`${base}.${sp.code}`, sp.expression);
  }
  const result = new Map<string, string[][]>();
  for (const { code: type, param } of patientCompartmentDefinition().resource) {
    const paths: string[][] = [];
    for (const name of param ?? []) {
      if (name === '{def}') continue; // the Patient itself: handled by id
      const expression = expressions.get(`${type}.${name}`);
      if (!expression) throw new Error(`no SearchParameter ${type}.${name} for the Patient compartment`);
      paths.push(...elementPathsOf(expression, type));
    }
    if (paths.length > 0) result.set(type, paths);
  }
  return (compiled = result);
}

/** Resource types that can be in a Patient compartment (those with compartment parameters, and Patient). */
export function patientCompartmentTypes(): string[] {
  return ['Patient', ...[...patientCompartmentPaths().keys()].filter((t) => t !== 'Patient')].sort();
}

/** All values at `path` below `node`, flattening arrays at every step (FHIRPath navigation). */
function valuesAt(node: Json, path: readonly string[]): Json[] {
  let current: Json[] = [node];
  for (const segment of path) {
    const next: Json[] = [];
    for (const value of current) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
      const child = (value as Record<string, Json>)[segment];
      if (Array.isArray(child)) next.push(...child);
      else if (child !== undefined && child !== null) next.push(child);
    }
    current = next;
  }
  return current;
}

const patientReference = /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

/** Ids of the patients whose compartment `resource` is in (a Patient is in its own). */
export function patientCompartmentsOf(resource: { resourceType: string; id?: string }, paths = patientCompartmentPaths()): string[] {
  const ids = new Set<string>();
  if (resource.resourceType === 'Patient' && resource.id) ids.add(resource.id);
  for (const path of paths.get(resource.resourceType) ?? []) {
    for (const value of valuesAt(resource, path)) {
      const reference = (value as { reference?: unknown }).reference;
      if (typeof reference !== 'string') continue;
      const match = patientReference.exec(reference);
      if (match) ids.add(match[1]);
    }
  }
  return [...ids];
}

/**
 * Types outside the Patient compartment that Patient- and Group-level exports add when the
 * exported compartment resources reference them: what a client needs to read those resources
 * (who treated, where, for which organization, which medication).
 */
export const REFERENCED_TYPES: readonly string[] = ['Practitioner', 'Organization', 'Location', 'Medication'];

/** The types a Patient- or Group-level export can hold: the compartment and the referenced types. */
export function patientLevelTypes(): string[] {
  return [...patientCompartmentTypes(), ...REFERENCED_TYPES];
}

