/**
 * `_elements`: which top-level elements of a resource to keep. Names and cardinalities come from
 * the published R4 StructureDefinitions; an element the definition marks mandatory (min >= 1) is
 * always kept, so a subsetted resource stays valid R4. Pure: no I/O beyond loading definitions.
 */
import type { ElementsSelection } from '../contracts/bulk-export';
import { r4ResourceElements, type ElementDefinitionSummary } from './definitions';

export const SUBSETTED_TAG = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue',
  code: 'SUBSETTED',
  display: 'subsetted',
};

/** Kept whatever is asked: identity and meta (versionId, lastUpdated, the SUBSETTED tag). */
const ALWAYS_KEPT = ['resourceType', 'id', 'meta'];

/** A parsed `_elements`: bare names apply to every type, `Type.name` to that type only. */

export interface ElementsProblem {
  value: string;
  reason: string;
}

/** The element names of a type as they appear in JSON: `value[x]` becomes valueQuantity, valueString, ... */
function jsonNames(element: ElementDefinitionSummary): string[] {
  if (!element.name.endsWith('[x]')) return [element.name];
  const base = element.name.slice(0, -3);
  return element.types.map((t) => base + t.charAt(0).toUpperCase() + t.slice(1));
}

/** Whether `name` (as a client writes it: `value` or `valueQuantity`) is a root element of `type`. */
function findElement(type: string, name: string): ElementDefinitionSummary | undefined {
  const elements = r4ResourceElements(type);
  if (!elements) return undefined;
  return elements.find((e) => (e.name.endsWith('[x]') ? e.name.slice(0, -3) === name || jsonNames(e).includes(name) : e.name === name));
}

/**
 * Parses `_elements` values (already comma-split). Returns the selection and every value that
 * names no root element of its type (or, bare, of any of `types`).
 */
export function parseElements(values: string[], types: readonly string[]): { selection: ElementsSelection; problems: ElementsProblem[] } {
  const selection: ElementsSelection = { all: [], byType: {} };
  const problems: ElementsProblem[] = [];
  for (const value of values) {
    const parts = value.split('.');
    if (parts.length === 2) {
      const [type, name] = parts;
      if (!r4ResourceElements(type)) problems.push({ value, reason: `${type} is not an R4 resource type` });
      else if (!findElement(type, name)) problems.push({ value, reason: `${name} is not a root element of ${type}` });
      else (selection.byType[type] ??= []).push(name);
    } else if (parts.length === 1 && /^[a-z][A-Za-z0-9]*$/.test(value)) {
      if (!types.some((t) => findElement(t, value))) problems.push({ value, reason: `${value} is not a root element of ${types.length === 1 ? types[0] : 'any exported type'}` });
      else selection.all.push(value);
    } else {
      problems.push({ value, reason: 'only root elements can be selected, as element or Type.element' });
    }
  }
  return { selection, problems };
}

/** The JSON keys to keep for `type`, or undefined when the selection leaves the type whole. */
export function keptElements(selection: ElementsSelection | undefined, type: string): string[] | undefined {
  if (!selection) return undefined;
  const requested = [...selection.all, ...(selection.byType[type] ?? [])];
  if (requested.length === 0) return undefined;
  const elements = r4ResourceElements(type) ?? [];
  const keep = new Set(ALWAYS_KEPT);
  for (const element of elements) {
    const chosen = element.min >= 1 || requested.some((name) => (element.name.endsWith('[x]') ? element.name.slice(0, -3) === name || jsonNames(element).includes(name) : element.name === name));
    if (!chosen) continue;
    for (const jsonName of jsonNames(element)) {
      // A requested valueQuantity keeps only that choice; a requested `value` (or a mandatory choice) keeps them all.
      if (element.name.endsWith('[x]') && element.min < 1 && !requested.includes(element.name.slice(0, -3)) && !requested.includes(jsonName)) continue;
      keep.add(jsonName);
      keep.add(`_${jsonName}`); // the primitive's id/extensions
    }
  }
  return [...keep];
}

/** The resource with only `keep` at its root, tagged SUBSETTED (once). */
export function subsetResource(resource: Record<string, unknown>, keep: ReadonlySet<string>): Record<string, unknown> {
  const subset: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resource)) if (keep.has(key)) subset[key] = value;
  const meta = { ...((subset.meta as Record<string, unknown> | undefined) ?? {}) };
  const tags = Array.isArray(meta.tag) ? (meta.tag as Array<{ system?: string; code?: string }>) : [];
  if (!tags.some((t) => t.system === SUBSETTED_TAG.system && t.code === SUBSETTED_TAG.code)) meta.tag = [...tags, SUBSETTED_TAG];
  subset.meta = meta;
  return subset;
}
