/**
 * What a search parameter's values mean for each parameter type: the elements a FHIRPath
 * expression returns (Coding, Identifier, HumanName, Period, Quantity, ...) turned into what a
 * search value is compared with. Unrecognised shapes contribute nothing.
 */
import { dateInterval, type Interval } from './ranges';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Case- and accent-insensitive form for string search ("Müller" matches "muller"). */
export function normalizeText(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

export interface TokenValue {
  system?: string;
  code?: string;
  /** Text that `:text` searches (CodeableConcept.text, Coding.display, Identifier.type.text). */
  text: string[];
}

const CONTACT_POINT_SYSTEMS = new Set(['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other']);

export function tokens(values: unknown[]): TokenValue[] {
  const out: TokenValue[] = [];
  const coding = (c: Json, text: string[]) => out.push({ system: str(c.system), code: str(c.code), text: [...text, ...(str(c.display) ? [c.display as string] : [])] });
  for (const v of values) {
    if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') out.push({ code: String(v), text: [] });
    else if (!isObject(v)) continue;
    else if ('coding' in v || ('text' in v && !('value' in v))) {
      const text = str(v.text) ? [v.text as string] : [];
      const codings = asArray(v.coding).filter(isObject);
      for (const c of codings) coding(c, text);
      if (codings.length === 0 && text.length > 0) out.push({ text });
    } else if ('code' in v || 'display' in v) coding(v, []);
    else if ('value' in v) {
      // Identifier (system|value) or ContactPoint (value only: its `system` is phone, email, ...).
      const isContactPoint = CONTACT_POINT_SYSTEMS.has(String(v.system));
      const typeText = isObject(v.type) && str(v.type.text) ? [v.type.text as string] : [];
      out.push({ system: isContactPoint ? undefined : str(v.system), code: str(v.value), text: typeText });
    }
  }
  return out;
}

const NAME_PARTS = ['text', 'family', 'given', 'prefix', 'suffix'];
const ADDRESS_PARTS = ['text', 'line', 'city', 'district', 'state', 'postalCode', 'country'];

export function strings(values: unknown[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    if (typeof v === 'string') out.push(v);
    else if (isObject(v)) {
      const parts = 'family' in v || 'given' in v ? NAME_PARTS : 'city' in v || 'line' in v || 'postalCode' in v ? ADDRESS_PARTS : Object.keys(v);
      for (const part of parts) for (const s of asArray(v[part])) if (typeof s === 'string') out.push(s);
    }
  }
  return out;
}

export interface ReferenceKey {
  type?: string;
  id: string;
  /** The whole reference when it is absolute. */
  full?: string;
}

/** `Type/id`, optionally absolute and with `_history`: groups base, type, id. */
export const REFERENCE = /^(?:(.*)\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

export function referenceKeys(values: unknown[]): ReferenceKey[] {
  const out: ReferenceKey[] = [];
  for (const v of values) {
    const reference = typeof v === 'string' ? v : isObject(v) ? str(v.reference) : undefined;
    if (!reference) continue;
    const m = REFERENCE.exec(reference);
    if (m) out.push({ type: m[2], id: m[3], full: m[1] ? reference : undefined });
    else out.push({ id: reference, full: reference });
  }
  return out;
}

export function dateIntervals(values: unknown[]): Interval[] {
  const out: Interval[] = [];
  const add = (text: unknown) => {
    const interval = typeof text === 'string' ? dateInterval(text) : undefined;
    if (interval) out.push(interval);
  };
  for (const v of values) {
    if (typeof v === 'string') add(v);
    else if (isObject(v) && ('start' in v || 'end' in v)) {
      // Period: an open end is open-ended.
      const start = typeof v.start === 'string' ? dateInterval(v.start) : undefined;
      const end = typeof v.end === 'string' ? dateInterval(v.end) : undefined;
      out.push({ lo: start?.lo ?? -Infinity, hi: end?.hi ?? Infinity });
    } else if (isObject(v) && 'event' in v) asArray(v.event).forEach(add); // Timing
  }
  return out;
}

export function numbers(values: unknown[]): number[] {
  return values.flatMap((v) => (typeof v === 'number' ? [v] : isObject(v) && typeof v.value === 'number' ? [v.value] : []));
}

export interface QuantityValue {
  value: number;
  system?: string;
  code?: string;
  unit?: string;
}

export function quantities(values: unknown[]): QuantityValue[] {
  const out: QuantityValue[] = [];
  for (const v of values) {
    if (isObject(v) && typeof v.value === 'number') out.push({ value: v.value, system: str(v.system), code: str(v.code) ?? str(v.currency), unit: str(v.unit) });
  }
  return out;
}

export function uris(values: unknown[]): string[] {
  return values.flatMap((v) => (typeof v === 'string' ? [v] : isObject(v) && typeof v.reference === 'string' ? [v.reference] : []));
}
