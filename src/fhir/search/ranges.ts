/**
 * FHIR search compares ranges, not points: `2024-05` means the whole month, `5.4` means
 * [5.35, 5.45). Dates become half-open millisecond intervals [lo, hi); a date without a time
 * zone is read as UTC.
 */

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';
export const PREFIXES: readonly Prefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

export interface Interval {
  lo: number;
  hi: number;
}

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** The interval a FHIR date, dateTime or instant covers, or undefined when it is not one. */
export function dateInterval(value: string): Interval | undefined {
  const m = DATE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, fraction, zone] = m;
  const year = Number(y);
  if (mo === undefined) return { lo: Date.UTC(year, 0, 1), hi: Date.UTC(year + 1, 0, 1) };
  const month = Number(mo) - 1;
  if (month > 11) return undefined;
  if (d === undefined) return { lo: Date.UTC(year, month, 1), hi: Date.UTC(year, month + 1, 1) };
  const day = Number(d);
  if (day < 1 || day > new Date(Date.UTC(year, month + 1, 0)).getUTCDate()) return undefined;
  if (h === undefined) return { lo: Date.UTC(year, month, day), hi: Date.UTC(year, month, day + 1) };
  if (Number(h) > 23 || Number(mi) > 59 || (s !== undefined && Number(s) > 59)) return undefined;
  const offset = zone && zone !== 'Z' ? (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) : 0;
  const lo = Date.UTC(year, month, day, Number(h), Number(mi), Number(s ?? 0), fraction ? Math.floor(Number(fraction) * 1000) : 0) - offset * 60_000;
  const step = s === undefined ? 60_000 : fraction ? 1 : 1000;
  return { lo, hi: lo + step };
}

/** Does a resource's interval `t` satisfy `prefix` against the search interval `s`? (R4 search, date prefixes) */
export function compareIntervals(prefix: Prefix, t: Interval, s: Interval, now = Date.now()): boolean {
  const eq = t.lo >= s.lo && t.hi <= s.hi;
  switch (prefix) {
    case 'eq':
      return eq;
    case 'ne':
      return !eq;
    case 'gt':
      return t.hi > s.hi;
    case 'lt':
      return t.lo < s.lo;
    case 'ge':
      return t.hi > s.hi || eq;
    case 'le':
      return t.lo < s.lo || eq;
    case 'sa':
      return t.lo >= s.hi;
    case 'eb':
      return t.hi <= s.lo;
    case 'ap': {
      // Approximately: within 10% of the distance between the value and now (at least a day).
      const margin = Math.max(0.1 * Math.abs(now - s.lo), 86_400_000);
      return t.lo < s.hi + margin && t.hi > s.lo - margin;
    }
  }
}

const NUMBER = /^[+-]?(\d+)(?:\.(\d+))?(?:[eE][+-]?\d+)?$/;

/** A search number with its implied precision: `5.4` is [5.35, 5.45). */
export function numberInterval(text: string): (Interval & { value: number }) | undefined {
  const m = NUMBER.exec(text);
  if (!m) return undefined;
  const value = Number(text);
  const half = 0.5 * 10 ** -(m[2]?.length ?? 0);
  return { value, lo: value - half, hi: value + half };
}

/** Does the number `n` of a resource satisfy `prefix` against the search number `s`? */
export function compareNumber(prefix: Prefix, n: number, s: Interval & { value: number }): boolean {
  switch (prefix) {
    case 'eq':
      return n >= s.lo && n < s.hi;
    case 'ne':
      return !(n >= s.lo && n < s.hi);
    case 'gt':
    case 'sa':
      return n > s.value;
    case 'lt':
    case 'eb':
      return n < s.value;
    case 'ge':
      return n >= s.value;
    case 'le':
      return n <= s.value;
    case 'ap':
      return Math.abs(n - s.value) <= Math.abs(0.1 * s.value);
  }
}
