/**
 * A FHIR search query (`Type?param[:modifier]=value,value&...`) compiled into predicates with
 * R4 semantics: clauses are AND-ed, comma-separated values OR-ed. `_id` and `_lastUpdated` are
 * also described as conditions on indexed columns (a `Pushdown`), which the store writes as SQL
 * (src/store/search-sql.ts), so exports and searches filter them in PostgreSQL. Pure.
 */
import { searchParameter, SUPPORTED_TYPES, type ResolvedSearchParameter } from './parameters';
import { compareIntervals, compareNumber, dateInterval, numberInterval, PREFIXES, type Interval, type Prefix } from './ranges';
import { dateIntervals, normalizeText, numbers, quantities, REFERENCE, referenceKeys, strings, tokens, uris, type TokenValue } from './values';

export class SearchQueryError extends Error {
  constructor(
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
  }
}

export interface SearchClause {
  code: string;
  modifier?: string;
  matches(resource: object): boolean;
  /** The same condition on indexed columns of resource_versions, when it can be pushed down. */
  pushdown?: Pushdown;
}

/** An instant interval [from, to) of `last_updated` (an open end is unbounded), or its complement. */
export interface LastUpdatedRange {
  from?: string;
  to?: string;
  not?: boolean;
}

/** A clause PostgreSQL can answer from indexed columns: ids in a list, or last updates in any of some ranges. */
export type Pushdown = { column: 'id'; anyOf: string[] } | { column: 'last_updated'; anyOf: LastUpdatedRange[] };

export interface SearchQuery {
  resourceType: string;
  clauses: SearchClause[];
}

/** Result and paging parameters: they shape a result page and mean nothing for a filter. */
const RESULT_PARAMETERS = new Set(['_include', '_revinclude', '_sort', '_count', '_summary', '_elements', '_total', '_contained', '_containedType', '_format', '_pretty']);
/** Defined by FHIR but not implemented here. */
const UNSUPPORTED_PARAMETERS = new Set(['_has', '_text', '_content', '_list', '_query', '_filter', '_type', '_source']);

const MODIFIERS: Record<string, string[]> = {
  token: ['missing', 'not', 'text'],
  string: ['missing', 'exact', 'contains'],
  reference: ['missing', 'identifier'],
  date: ['missing'],
  number: ['missing'],
  quantity: ['missing'],
  uri: ['missing', 'below', 'above'],
};

/** Splits at unescaped `separator` and removes FHIR search escapes (`\,` `\|` `\$` `\\`). */
function splitEscaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && i + 1 < text.length) current += text[++i];
    else if (text[i] === separator) {
      parts.push(current);
      current = '';
    } else current += text[i];
  }
  parts.push(current);
  return parts;
}

/** The parts of a token or quantity value around `|`, keeping escapes of other characters. */
const pipeParts = (value: string) => value.split(/(?<!\\)\|/).map((p) => p.replace(/\\(.)/g, '$1'));

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new SearchQueryError(`${what} is not valid URL encoding`);
  }
}

/** Parses `Type?query` (the form `_typeFilter` uses). */
export function parseTypedSearch(text: string): SearchQuery {
  const at = text.indexOf('?');
  if (at <= 0) throw new SearchQueryError(`${JSON.stringify(text)} is not a search query of the form Type?parameter=value`);
  return parseSearchQuery(text.slice(0, at), text.slice(at + 1));
}

/** Parses the query string (URL-encoded, without `?`) of a search on `resourceType`. */
export function parseSearchQuery(resourceType: string, query: string): SearchQuery {
  const clauses: SearchClause[] = [];
  for (const pair of query.split('&').filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new SearchQueryError(`${JSON.stringify(pair)} is not parameter=value`);
    const name = decode(pair.slice(0, eq), 'A parameter name');
    const value = decode(pair.slice(eq + 1), `The value of ${name}`);
    clauses.push(compileClause(resourceType, name, value));
  }
  if (clauses.length === 0) throw new SearchQueryError(`The search on ${resourceType} has no parameters`);
  return { resourceType, clauses };
}

function compileClause(resourceType: string, name: string, value: string): SearchClause {
  const [code, modifier, ...extra] = name.split(':');
  if (RESULT_PARAMETERS.has(code)) throw new SearchQueryError(`${code} is a result parameter, not a filter, and is not allowed here`, code);
  if (UNSUPPORTED_PARAMETERS.has(code)) throw new SearchQueryError(`${code} is not supported`, code);
  if (code.includes('.')) throw new SearchQueryError(`Chained parameters (${code}) are not supported`, code);
  if (extra.length > 0) throw new SearchQueryError(`${name} has more than one modifier`, code);
  const parameter = searchParameter(resourceType, code);
  if (!parameter) throw new SearchQueryError(`${resourceType} has no search parameter ${code} in FHIR R4`, code);
  if (!SUPPORTED_TYPES.has(parameter.type)) throw new SearchQueryError(`${code} is a ${parameter.type} parameter; those are not supported`, code);
  if (value === '') throw new SearchQueryError(`${name} has an empty value`, code);
  // No FHIR value holds U+0000, and PostgreSQL text cannot carry it into a pushed-down filter.
  if (value.includes('\u0000')) throw new SearchQueryError(`${name} holds a NUL character (U+0000), which no FHIR value may contain`, code);

  let typeModifier: string | undefined;
  if (modifier !== undefined && !MODIFIERS[parameter.type].includes(modifier)) {
    // A reference parameter's modifier may name the target type (subject:Patient=123).
    if (parameter.type === 'reference' && parameter.target.includes(modifier)) typeModifier = modifier;
    else throw new SearchQueryError(`The modifier :${modifier} does not apply to ${code} (a ${parameter.type} parameter)`, code);
  }

  if (modifier === 'missing') {
    if (value !== 'true' && value !== 'false') throw new SearchQueryError(`${name} must be true or false`, code);
    const missing = value === 'true';
    return { code, modifier, matches: (r) => (parameter.values(r).length === 0) === missing };
  }

  const values = splitEscaped(value, ',');
  if (values.some((v) => v === '')) throw new SearchQueryError(`${name} has an empty value in its list`, code);
  const matches = compileValues(parameter, typeModifier ? undefined : modifier, typeModifier, values, code);
  return { code, modifier, matches, pushdown: pushdownOf(parameter, modifier, values) };
}

function compileValues(p: ResolvedSearchParameter, modifier: string | undefined, typeModifier: string | undefined, values: string[], code: string): (r: object) => boolean {
  switch (p.type) {
    case 'token': {
      if (modifier === 'text') {
        const wanted = values.map(normalizeText);
        return (r) => tokens(p.values(r)).some((t) => t.text.some((text) => wanted.some((w) => normalizeText(text).includes(w))));
      }
      const wanted = values.map(parseToken);
      const any = (r: object) => tokens(p.values(r)).some((t) => wanted.some((w) => tokenMatches(t, w)));
      return modifier === 'not' ? (r) => !any(r) : any;
    }
    case 'string': {
      const wanted = values.map((v) => (modifier === 'exact' ? v : normalizeText(v)));
      if (modifier === 'exact') return (r) => strings(p.values(r)).some((s) => wanted.includes(s));
      if (modifier === 'contains') return (r) => strings(p.values(r)).some((s) => wanted.some((w) => normalizeText(s).includes(w)));
      return (r) => strings(p.values(r)).some((s) => wanted.some((w) => normalizeText(s).startsWith(w)));
    }
    case 'reference': {
      if (modifier === 'identifier') {
        const wanted = values.map(parseToken);
        return (r) =>
          (p.values(r) as Array<{ identifier?: { system?: string; value?: string } }>).some(
            (ref) => ref?.identifier && wanted.some((w) => tokenMatches({ system: ref.identifier!.system, code: ref.identifier!.value, text: [] }, w)),
          );
      }
      const wanted = values.map((v) => parseReferenceValue(v, typeModifier, p, code));
      // Type/id, a bare id (any target type), or an absolute URL (which must agree when both are absolute).
      return (r) =>
        referenceKeys(p.values(r)).some((k) =>
          wanted.some((w) => (w.type === undefined || k.type === w.type) && k.id === w.id && (w.full === undefined || k.full === undefined || k.full === w.full)),
        );
    }
    case 'date': {
      const wanted = values.map((v) => {
        const { prefix, rest } = splitPrefix(v);
        const interval = dateInterval(rest);
        if (!interval) throw new SearchQueryError(`${code}: ${JSON.stringify(v)} is not a FHIR date, dateTime or instant (with an optional prefix such as ge)`, code);
        return { prefix, interval };
      });
      return (r) => dateIntervals(p.values(r)).some((t) => wanted.some((w) => compareIntervals(w.prefix, t, w.interval)));
    }
    case 'number': {
      const wanted = values.map((v) => parseNumberValue(v, code));
      return (r) => numbers(p.values(r)).some((n) => wanted.some((w) => compareNumber(w.prefix, n, w.number)));
    }
    case 'quantity': {
      const wanted = values.map((v) => {
        const [number, system, unitCode, ...more] = pipeParts(v);
        if (more.length > 0) throw new SearchQueryError(`${code}: ${JSON.stringify(v)} is not number|system|code`, code);
        return { ...parseNumberValue(number, code), system: system || undefined, unitCode: unitCode || undefined };
      });
      return (r) =>
        quantities(p.values(r)).some((q) =>
          wanted.some(
            (w) =>
              compareNumber(w.prefix, q.value, w.number) &&
              (w.system === undefined || q.system === w.system) &&
              (w.unitCode === undefined || q.code === w.unitCode || (w.system === undefined && q.unit === w.unitCode)),
          ),
        );
    }
    case 'uri': {
      if (modifier === 'below') return (r) => uris(p.values(r)).some((u) => values.some((v) => u.startsWith(v)));
      if (modifier === 'above') return (r) => uris(p.values(r)).some((u) => values.some((v) => v.startsWith(u)));
      return (r) => uris(p.values(r)).some((u) => values.includes(u));
    }
    default:
      throw new SearchQueryError(`${code} is a ${p.type} parameter; those are not supported`, code);
  }
}

interface TokenQuery {
  /** undefined: any system; '': no system. */
  system?: string;
  /** undefined: any code (`system|`). */
  code?: string;
}

function parseToken(value: string): TokenQuery {
  const parts = pipeParts(value);
  if (parts.length === 1) return { code: parts[0] };
  if (parts.length > 2) throw new SearchQueryError(`${JSON.stringify(value)} is not a token (code, system|code, |code or system|)`);
  return { system: parts[0], code: parts[1] === '' ? undefined : parts[1] };
}

function tokenMatches(t: TokenValue, q: TokenQuery): boolean {
  if (q.system !== undefined && (q.system === '' ? t.system !== undefined : t.system !== q.system)) return false;
  return q.code === undefined || t.code === q.code;
}

function splitPrefix(value: string): { prefix: Prefix; rest: string } {
  // A time zone's `+` that arrived unencoded was decoded as a space: read it as `+`.
  const repaired = value.replace(/ (\d{2}:\d{2})$/, '+$1');
  const prefix = PREFIXES.find((p) => repaired.startsWith(p) && /^[-+.0-9]/.test(repaired.slice(2)));
  return prefix ? { prefix, rest: repaired.slice(2) } : { prefix: 'eq', rest: repaired };
}

function parseNumberValue(value: string, code: string): { prefix: Prefix; number: Interval & { value: number } } {
  const { prefix, rest } = splitPrefix(value);
  const number = numberInterval(rest);
  if (!number) throw new SearchQueryError(`${code}: ${JSON.stringify(value)} is not a number (with an optional prefix such as gt)`, code);
  return { prefix, number };
}

function parseReferenceValue(value: string, typeModifier: string | undefined, p: ResolvedSearchParameter, code: string): { type?: string; id: string; full?: string } {
  const m = REFERENCE.exec(value);
  if (m) {
    if (typeModifier && m[2] !== typeModifier) throw new SearchQueryError(`${code}:${typeModifier} cannot match ${JSON.stringify(value)}`, code);
    if (p.target.length > 0 && !p.target.includes(m[2])) throw new SearchQueryError(`${code} refers to ${p.target.join(', ')}, not ${m[2]}`, code);
    return { type: m[2], id: m[3], full: m[1] ? value : undefined };
  }
  if (/^[A-Za-z0-9\-.]{1,64}$/.test(value)) return { type: typeModifier, id: value };
  throw new SearchQueryError(`${code}: ${JSON.stringify(value)} is not a reference (Type/id or id)`, code);
}

/** The clauses PostgreSQL can answer from indexed columns: `_id` and `_lastUpdated`. */
function pushdownOf(p: ResolvedSearchParameter, modifier: string | undefined, values: string[]): Pushdown | undefined {
  if (modifier !== undefined) return undefined;
  if (p.code === '_id') return { column: 'id', anyOf: values };
  if (p.code === '_lastUpdated') {
    const ranges = values.map((v): LastUpdatedRange | undefined => {
      const { prefix, rest } = splitPrefix(v);
      const { lo, hi } = dateInterval(rest)!; // validated by compileValues
      const [from, to] = [new Date(lo).toISOString(), new Date(hi).toISOString()];
      // last_updated is an instant: the interval [t, t + 1 ms).
      switch (prefix) {
        case 'eq':
          return { from, to };
        case 'ne':
          return { from, to, not: true };
        case 'gt':
        case 'sa':
          return { from: to };
        case 'lt':
        case 'eb':
          return { to: from };
        case 'ge':
          return { from };
        case 'le':
          return { to };
        case 'ap':
          return undefined;
      }
    });
    return ranges.some((r) => r === undefined) ? undefined : { column: 'last_updated', anyOf: ranges as LastUpdatedRange[] };
  }
  return undefined;
}
