/**
 * A FHIR type search request (`GET [base]/{type}?...`) from its query string to the `searchset`
 * Bundle (`total`, `self`, `next` and `previous` links, paging with `_count`), on the same search
 * engine as `_typeFilter`. Used by the REST route and by asynchronous requests.
 */
import type { ElementsSelection } from '../contracts/bulk-export';
import { parseElements } from '../fhir/elements';
import { parseInstant } from '../fhir/kickoff-parameters';
import { isKnownResourceType } from '../fhir/resource-validation';
import { parseSearchQuery, SearchQueryError } from '../fhir/search/query';
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { ResourceStore } from '../store/resource-store';
import { runTypeSearch } from './run-search';

const DEFAULT_COUNT = 50;
const MAX_COUNT = 1000;
const UNSUPPORTED_RESULT_PARAMETERS = new Set(['_sort', '_include', '_revinclude', '_contained', '_containedType']);

export interface ParsedSearch {
  filterPairs: string[];
  count: number;
  offset: number;
  at?: string;
  countOnly: boolean;
  elements?: ElementsSelection;
  elementsRaw?: string;
}

function decodeComponent(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw OperationOutcomeError.invalid(`${JSON.stringify(raw)} is not valid URL encoding`);
  }
}

function nonNegativeInteger(value: string, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) > max) throw OperationOutcomeError.invalid(`${name} must be a whole number from 0 to ${max}, got ${JSON.stringify(value)}`, name);
  return Number(value);
}

/** Splits the query into result parameters and filter parameters; lenient handling drops bad filters. */
export function parseSearchRequest(resourceType: string, querystring: string, lenient: boolean): ParsedSearch {
  const parsed: ParsedSearch = { filterPairs: [], count: DEFAULT_COUNT, offset: 0, countOnly: false };
  for (const pair of querystring.split('&').filter(Boolean)) {
    const eq = pair.indexOf('=');
    const name = decodeComponent(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decodeComponent(pair.slice(eq + 1));
    if (name === '_count') parsed.count = nonNegativeInteger(value, '_count', MAX_COUNT);
    else if (name === '_offset') parsed.offset = nonNegativeInteger(value, '_offset');
    else if (name === '_at') parsed.at = parseInstant(value, '_at');
    else if (name === '_total' || name === '_format') continue; // totals are always exact; the format is always JSON
    else if (name === '_summary') {
      if (value === 'count') parsed.countOnly = true;
      else if (value !== 'false') throw new OperationOutcomeError('not-supported', `_summary=${value} is not supported (count and false are)`, { expression: ['_summary'] });
    } else if (name === '_elements') {
      const { selection, problems } = parseElements(value.split(','), [resourceType]);
      if (problems.length > 0 && !lenient) throw OperationOutcomeError.invalid(`_elements ${JSON.stringify(problems[0].value)}: ${problems[0].reason}`, '_elements');
      parsed.elements = selection;
      parsed.elementsRaw = value;
    } else if (UNSUPPORTED_RESULT_PARAMETERS.has(name.split(':')[0])) {
      if (!lenient) throw new OperationOutcomeError('not-supported', `${name} is not supported`, { expression: [name] });
    } else {
      try {
        parseSearchQuery(resourceType, pair); // checks this parameter alone
        parsed.filterPairs.push(pair);
      } catch (err) {
        if (!(err instanceof SearchQueryError)) throw err;
        if (!lenient) throw OperationOutcomeError.invalid(err.message, err.parameter ?? name);
      }
    }
  }
  return parsed;
}

export interface TypeSearchRequest {
  resourceType: string;
  /** The raw query string (without `?`). */
  querystring: string;
  lenient: boolean;
  /** Absolute FHIR base for links and fullUrls. */
  fhirBaseUrl: string;
}

/** Checks a search request; throws an OperationOutcomeError (not-found: unknown type; invalid: bad parameter) before any work starts. */
export function checkTypeSearch(request: TypeSearchRequest): ParsedSearch {
  if (!isKnownResourceType(request.resourceType)) throw OperationOutcomeError.notFound(`Unknown resource type ${request.resourceType}`);
  return parseSearchRequest(request.resourceType, request.querystring, request.lenient);
}

/** Runs a type search; answers the searchset Bundle as JSON text. */
export async function answerTypeSearch(store: ResourceStore, request: TypeSearchRequest): Promise<string> {
  const search = checkTypeSearch(request);
  const { resourceType } = request;
  const result = await runTypeSearch(store, {
    resourceType,
    filter: search.filterPairs.join('&'),
    count: search.count,
    offset: search.offset,
    at: search.at,
    countOnly: search.countOnly,
    elements: search.elements,
  });

  const base = `${request.fhirBaseUrl}/${resourceType}`;
  const pageUrl = (offset: number) =>
    `${base}?${[
      ...search.filterPairs,
      ...(search.elementsRaw ? [`_elements=${encodeURIComponent(search.elementsRaw)}`] : []),
      `_count=${search.count}`,
      `_offset=${offset}`,
      `_at=${encodeURIComponent(result.at)}`,
    ].join('&')}`;
  const links = [{ relation: 'self', url: request.querystring ? `${base}?${request.querystring}` : base }];
  if (!search.countOnly && search.count > 0 && search.offset + search.count < result.total) links.push({ relation: 'next', url: pageUrl(search.offset + search.count) });
  if (!search.countOnly && search.offset > 0) links.push({ relation: 'previous', url: pageUrl(Math.max(0, search.offset - search.count)) });

  // The page's resources are JSON text already: splice them in rather than parse and re-serialize.
  const entries = result.page.map(({ id, json }) => `{"fullUrl":${JSON.stringify(`${base}/${id}`)},"resource":${json},"search":{"mode":"match"}}`);
  return `{"resourceType":"Bundle","type":"searchset","total":${result.total},"link":${JSON.stringify(links)}${
    search.countOnly ? '' : `,"entry":[${entries.join(',')}]`
  }}`;
}
