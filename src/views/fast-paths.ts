/**
 * The FHIRPath expressions flat views are mostly made of, evaluated straight on the JSON:
 * member chains from a known type (`code.coding.first().system`), `first()`, `ofType(T)` right
 * after a choice element (`value.ofType(Quantity)` reads `valueQuantity`), `exists()`,
 * `getResourceKey()` and `getReferenceKey([T])`. Anything else (a choice element without
 * `ofType`, operators, other functions, an unknown base type) is left to the engine, which
 * gives the same answers more slowly: on a million resources the engine's per-call overhead is
 * most of a view's cost. Element types come from the engine's own R4 model. Pure.
 */
import type { Model } from 'fhirpath';
import { referenceParts } from './references';

type Evaluate = (node: unknown, rowIndex: number) => unknown[];

/** What a member's values are in JSON, by its FHIR type. */
type JsonKind = 'string' | 'number' | 'boolean' | 'object';

export type Step =
  | { kind: 'member'; name: string; extensions: string; json: JsonKind; otherChoices?: string[] }
  | { kind: 'first' }
  | { kind: 'exists' }
  | { kind: 'resourceKey' }
  | { kind: 'referenceKey'; type?: string };

const IDENTIFIER = /^[a-z][A-Za-z0-9_]*$/;

const NUMBERS = new Set(['integer', 'positiveInt', 'unsignedInt', 'decimal', 'System.Integer', 'System.Decimal']);
/** A FHIR type's JSON: primitives by name (System.* are the engine's own), every other type an object. */
function jsonKind(type: string | undefined): JsonKind {
  if (type === undefined) return 'object';
  if (type === 'boolean' || type === 'System.Boolean') return 'boolean';
  if (NUMBERS.has(type)) return 'number';
  return /^[a-z]/.test(type) || type.startsWith('System.') ? 'string' : 'object';
}
const TYPE = /^[A-Za-z][A-Za-z0-9]*$/;

/** The type behind a path: a complex datatype names itself, backbone elements keep their path. */
function typeAt(model: Model, path: string): string {
  const type = (model as unknown as { path2Type: Record<string, string> }).path2Type[path];
  const elsewhere = (model as unknown as { pathsDefinedElsewhere: Record<string, string> }).pathsDefinedElsewhere[path];
  if (elsewhere) return elsewhere;
  return type && type !== 'BackboneElement' && type !== 'Element' && /^[A-Z]/.test(type) ? type : path;
}

/** The steps of `expression` from `baseType`, or undefined when it is not in the subset. */
function parse(expression: string, baseType: string, model: Model): Step[] | undefined {
  return parseTyped(expression, baseType, model)?.steps;
}

/** The steps of `expression` from `baseType` and the type they end on (a backbone element keeps its path), or undefined when it is not in the subset. */
export function parseTyped(expression: string, baseType: string, model: Model): { steps: Step[]; type: string } | undefined {
  const choices = (model as unknown as { choiceTypePaths: Record<string, string[]> }).choiceTypePaths;
  const { path2Type, pathsDefinedElsewhere } = model as unknown as { path2Type: Record<string, string>; pathsDefinedElsewhere: Record<string, string> };
  const parts = expression.trim().split('.');
  const steps: Step[] = [];
  let at = baseType;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i].trim();
    if (part === 'first()') steps.push({ kind: 'first' });
    else if (part === 'exists()' && i === parts.length - 1) steps.push({ kind: 'exists' });
    else if (part === 'getResourceKey()' && i === parts.length - 1 && steps.length === 0) steps.push({ kind: 'resourceKey' });
    else if (/^getReferenceKey\(\s*([A-Za-z]*)\s*\)$/.test(part) && i === parts.length - 1) {
      const type = /^getReferenceKey\(\s*([A-Za-z]*)\s*\)$/.exec(part)![1];
      steps.push({ kind: 'referenceKey', type: type || undefined });
    } else if (IDENTIFIER.test(part)) {
      const path = `${at}.${part}`;
      const choice = choices[path];
      if (choice) {
        // Only `x.ofType(T)`: it reads the element `xT`.
        const ofType = /^ofType\(\s*([A-Za-z]+)\s*\)$/.exec(parts[i + 1]?.trim() ?? '');
        if (!ofType || !TYPE.test(ofType[1])) return undefined;
        const wanted = ofType[1];
        const suffix = wanted[0].toUpperCase() + wanted.slice(1);
        if (!choice.includes(suffix)) return undefined; // a type this element cannot have: leave it to the engine
        // The choice's other types: a resource holding one of them beside this one is left to the engine, which takes one.
        const otherChoices = choice.filter((c) => c !== suffix).flatMap((c) => [`${part}${c}`, `_${part}${c}`]);
        steps.push({ kind: 'member', name: `${part}${suffix}`, extensions: `_${part}${suffix}`, json: jsonKind(wanted), otherChoices });
        at = /^[A-Z]/.test(wanted) ? wanted : `${path}${suffix}`;
        i++;
      } else {
        if (!path2Type[path] && !pathsDefinedElsewhere[path]) return undefined; // unknown element
        steps.push({ kind: 'member', name: part, extensions: `_${part}`, json: jsonKind(path2Type[path]) });
        at = typeAt(model, path);
      }
    } else return undefined;
  }
  return steps.length > 0 ? { steps, type: at } : undefined;
}

/**
 * Data the fast paths do not answer for: a null inside an array, a member with its `_member`
 * sibling (a primitive's extensions, which give the engine nodes without values), a value not of
 * its type's JSON kind, two types of one choice element. Valid FHIR has the first two only for
 * primitives with extensions, the others never; the engine answers for such a resource instead
 * (run-view.ts), so a fast path never guesses how it would.
 */
export class IrregularData extends Error {}
const IRREGULAR = new IrregularData('data the fast paths leave to the engine');

/** The array's elements, which must all be present. */
function present(values: unknown[]): unknown[] {
  for (const v of values) if (v === null || v === undefined) throw IRREGULAR;
  return values;
}

/** Several values where one was asked for (a plain column's error, which the list form reports). */
export const SEVERAL = Symbol('several values');

/** A walk's result when it is a list (a lone value is returned bare, so single-valued chains allocate nothing). */
class List {
  constructor(readonly values: unknown[]) {}
}

const referenceKey = (value: unknown, type: string | undefined): string | undefined => {
  const reference = (value as { reference?: unknown } | undefined)?.reference;
  const parts = typeof reference === 'string' ? referenceParts(reference) : undefined;
  return parts && (type === undefined || type === parts.type) ? parts.id : undefined;
};

/** Whether a value is what its FHIR type has in JSON. */
const fits = (value: unknown, json: JsonKind): boolean => (json === 'object' ? typeof value === 'object' && value !== null && !Array.isArray(value) : typeof value === json);

/**
 * A member of a node (undefined when the node is not an object). Throws IrregularData for a
 * member with extensions, or one whose value (or an item of it) is not of its type's JSON kind.
 */
function memberOf(node: unknown, step: { name: string; extensions: string; json: JsonKind; otherChoices?: string[] }): unknown {
  if (node === null || typeof node !== 'object') return undefined;
  const object = node as Record<string, unknown>;
  if (object[step.extensions] !== undefined) throw IRREGULAR;
  const value = object[step.name];
  if (value === undefined) return undefined;
  if (step.otherChoices) for (const other of step.otherChoices) if (object[other] !== undefined) throw IRREGULAR;
  if (Array.isArray(value)) {
    for (const item of value) if (!fits(item, step.json)) throw IRREGULAR;
  } else if (!fits(value, step.json)) throw IRREGULAR;
  return value;
}

/** The steps applied to `node`: one value (undefined or null for none), or a List. */
function walk(steps: Step[], node: unknown): unknown {
  let one: unknown = node;
  let many: unknown[] | undefined;
  for (const step of steps) {
    switch (step.kind) {
      case 'member': {
        if (many === undefined) {
          const child = memberOf(one, step);
          if (Array.isArray(child)) many = present(child);
          else one = child;
        } else {
          const next: unknown[] = [];
          for (const v of many) {
            const child = memberOf(v, step);
            if (Array.isArray(child)) {
              for (const c of present(child)) next.push(c);
            } else if (child !== undefined && child !== null) next.push(child);
          }
          many = next;
        }
        break;
      }
      case 'first':
        if (many !== undefined) {
          one = many[0];
          many = undefined;
        }
        break;
      case 'exists':
        return many !== undefined ? many.length > 0 : one !== undefined && one !== null;
      case 'resourceKey': {
        const r = one as { resourceType?: unknown; id?: unknown } | undefined;
        return r && typeof r.resourceType === 'string' && typeof r.id === 'string' ? r.id : undefined;
      }
      case 'referenceKey': {
        if (many === undefined) return one === undefined || one === null ? undefined : referenceKey(one, step.type);
        const keys: unknown[] = [];
        for (const v of many) {
          const key = referenceKey(v, step.type);
          if (key !== undefined) keys.push(key);
        }
        return new List(keys);
      }
    }
  }
  return many !== undefined ? new List(many) : one;
}

/**
 * A fast evaluation of `expression` on nodes of `baseType`, or undefined to use the engine. Its
 * `one` gives the single value a plain column takes without building a list: undefined for
 * none, SEVERAL for more than one.
 */
export function compileFastPath(expression: string, baseType: string | undefined, model: Model): (Evaluate & { one: (node: unknown) => unknown }) | undefined {
  if (!baseType) return undefined;
  const steps = parse(expression, baseType, model);
  if (!steps) return undefined;
  const evaluate = (node: unknown): unknown[] => {
    const result = walk(steps, node);
    return result instanceof List ? result.values : result === undefined || result === null ? [] : [result];
  };
  const one = (node: unknown): unknown => {
    const result = walk(steps, node);
    if (!(result instanceof List)) return result === null ? undefined : result;
    return result.values.length === 0 ? undefined : result.values.length === 1 ? result.values[0] : SEVERAL;
  };
  return Object.assign(evaluate, { one });
}
