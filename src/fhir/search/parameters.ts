/**
 * Search parameters of a resource type, from the published R4 SearchParameter definitions. An
 * R4 expression is a union over every base type (`AllergyIntolerance.code | Condition.code | ...`);
 * each type gets only its own branches, compiled once, so evaluating one costs microseconds.
 */
import { evalFhirPath, parseFhirPath, type FhirPathAtom } from '@medplum/core';
import { r4SearchParameters, type SearchParameterDefinition } from '../definitions';

export type SearchParameterType = 'token' | 'string' | 'reference' | 'date' | 'quantity' | 'uri' | 'number';

export const SUPPORTED_TYPES: ReadonlySet<string> = new Set<SearchParameterType>(['token', 'string', 'reference', 'date', 'quantity', 'uri', 'number']);

export interface ResolvedSearchParameter {
  code: string;
  /** The definition's type (composite and special are refused by the query parser). */
  type: string;
  /** Resource types a reference parameter may point to. */
  target: string[];
  /** The definition's expression narrowed to one resource type. */
  expression: string;
  /** The values the parameter indexes in a resource. */
  values(resource: object): unknown[];
}

/** Splits a FHIRPath expression at its top-level `|` (outside parentheses and strings). */
function unionBranches(expression: string): string[] {
  const branches: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const ch of expression) {
    if (ch === "'") quoted = !quoted;
    if (!quoted && ch === '(') depth++;
    if (!quoted && ch === ')') depth--;
    if (!quoted && depth === 0 && ch === '|') {
      branches.push(current.trim());
      current = '';
      continue;
    }
    current += ch;
  }
  if (current.trim()) branches.push(current.trim());
  return branches;
}

/** The branches of `expression` that apply to `type`, with `Resource.`/`DomainResource.` read as `type.`. */
export function expressionForType(expression: string, type: string): string {
  return unionBranches(expression)
    .map((branch) => branch.replace(/^(\(*)(?:Resource|DomainResource)\./, `$1${type}.`))
    .filter((branch) => branch.replace(/^\(+/, '').startsWith(`${type}.`))
    .join(' | ');
}

/** Beyond R4, so clients can find a Group for a Group export by its name (as later FHIR versions allow). */
const ADDED_PARAMETERS: SearchParameterDefinition[] = [
  { code: 'name', base: ['Group'], type: 'string', expression: 'Group.name' },
  // SQL on FHIR's ViewDefinition (an additional resource): found by canonical, name and the type it reads.
  { code: 'url', base: ['ViewDefinition'], type: 'uri', expression: 'ViewDefinition.url' },
  { code: 'name', base: ['ViewDefinition'], type: 'string', expression: 'ViewDefinition.name' },
  { code: 'resource', base: ['ViewDefinition'], type: 'token', expression: 'ViewDefinition.resource' },
  { code: 'status', base: ['ViewDefinition'], type: 'token', expression: 'ViewDefinition.status' },
  { code: 'version', base: ['ViewDefinition'], type: 'token', expression: 'ViewDefinition.version' },
];

let byTypeAndCode: Map<string, SearchParameterDefinition> | undefined;

function definition(type: string, code: string): SearchParameterDefinition | undefined {
  if (!byTypeAndCode) {
    byTypeAndCode = new Map();
    for (const p of [...r4SearchParameters(), ...ADDED_PARAMETERS]) for (const base of p.base) byTypeAndCode.set(`${base}.${p.code}`, p);
  }
  return byTypeAndCode.get(`${type}.${code}`) ?? byTypeAndCode.get(`DomainResource.${code}`) ?? byTypeAndCode.get(`Resource.${code}`);
}

const resolved = new Map<string, ResolvedSearchParameter | null>();

/** The parameter `code` of `type`, or undefined when R4 defines none (or none with an expression for the type). */
export function searchParameter(type: string, code: string): ResolvedSearchParameter | undefined {
  const key = `${type}.${code}`;
  if (!resolved.has(key)) {
    const found = definition(type, code);
    const expression = found?.expression ? expressionForType(found.expression, type) : '';
    if (!found || !expression) {
      resolved.set(key, null);
    } else {
      const atom: FhirPathAtom = parseFhirPath(expression);
      resolved.set(key, {
        code,
        type: found.type,
        target: found.target ?? [],
        expression,
        values: (resource) => evalFhirPath(atom, resource),
      });
    }
  }
  return resolved.get(key) ?? undefined;
}

/** The search parameters of `type` this engine supports, for the CapabilityStatement. */
export function supportedSearchParameters(type: string): Array<{ name: string; type: string; definition?: string }> {
  definition(type, '_id'); // builds the index
  const codes = [...byTypeAndCode!.keys()]
    .filter((key) => key.startsWith(`${type}.`) || key.startsWith('Resource.') || key.startsWith('DomainResource.'))
    .map((key) => key.slice(key.indexOf('.') + 1));
  return [...new Set(codes)]
    .sort()
    .flatMap((code) => {
      const p = searchParameter(type, code);
      if (!p || !SUPPORTED_TYPES.has(p.type)) return [];
      return [{ name: code, type: p.type, ...(definition(type, code)?.url ? { definition: definition(type, code)!.url } : {}) }];
    });
}
