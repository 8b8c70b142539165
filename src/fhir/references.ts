/** Reference rewriting for imports: `urn:uuid:` fullUrls become `Type/id`. Pure functions. */

export interface ReferenceScan {
  /** urn:uuid references this map could not resolve. */
  unresolved: string[];
  /** Conditional references (`Type?search`), left as they are. */
  conditional: string[];
}

/**
 * Rewrites, in place, every `reference` string in `node` that `resolve` knows; reports the
 * urn:uuid ones it does not know and the conditional ones (which stay as written).
 */
export function rewriteReferences(node: unknown, resolve: (urn: string) => string | undefined): ReferenceScan {
  const scan: ReferenceScan = { unresolved: [], conditional: [] };
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const object = value as Record<string, unknown>;
    // for...in rather than Object.entries: no array per object (imports walk every object once)
    for (const key in object) {
      const child = object[key];
      if (key === 'reference' && typeof child === 'string') {
        if (child.startsWith('urn:uuid:') || child.startsWith('urn:oid:')) {
          const target = resolve(child);
          if (target) object.reference = target;
          else scan.unresolved.push(child);
        } else if (/^[A-Z][A-Za-z]+\?/.test(child)) {
          scan.conditional.push(child);
        }
      } else if (typeof child === 'object') {
        visit(child);
      }
    }
  };
  visit(node);
  return scan;
}
