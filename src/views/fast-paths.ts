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

type Step =
  | { kind: 'member'; name: string }
  | { kind: 'first' }
  | { kind: 'exists' }
  | { kind: 'resourceKey' }
  | { kind: 'referenceKey'; type?: string };

const IDENTIFIER = /^[a-z][A-Za-z0-9_]*$/;
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
  const choices = (model as unknown as { choiceTypePaths: Record<string, string[]> }).choiceTypePaths;
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
        steps.push({ kind: 'member', name: `${part}${suffix}` });
        at = /^[A-Z]/.test(wanted) ? wanted : `${path}${suffix}`;
        i++;
      } else {
        if (!(model as unknown as { path2Type: Record<string, string> }).path2Type[path] && !(model as unknown as { pathsDefinedElsewhere: Record<string, string> }).pathsDefinedElsewhere[path]) return undefined; // unknown element
        steps.push({ kind: 'member', name: part });
        at = typeAt(model, path);
      }
    } else return undefined;
  }
  return steps.length > 0 ? steps : undefined;
}

/** The array's elements without null entries (the array itself when it has none, as nearly always). */
function present(values: unknown[]): unknown[] {
  for (const v of values) if (v === null || v === undefined) return values.filter((c) => c !== null && c !== undefined);
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

/** The steps applied to `node`: one value (undefined or null for none), or a List. */
function walk(steps: Step[], node: unknown): unknown {
  let one: unknown = node;
  let many: unknown[] | undefined;
  for (const step of steps) {
    switch (step.kind) {
      case 'member': {
        if (many === undefined) {
          const child = one !== null && typeof one === 'object' ? (one as Record<string, unknown>)[step.name] : undefined;
          if (Array.isArray(child)) many = present(child);
          else one = child;
        } else {
          const next: unknown[] = [];
          for (const v of many) {
            const child = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[step.name] : undefined;
            if (Array.isArray(child)) {
              for (const c of child) if (c !== null && c !== undefined) next.push(c);
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
