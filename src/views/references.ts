/** References as SQL on FHIR keys see them. Pure. */

/** `Type/id` out of a reference: relative, absolute or versioned (`.../Type/id/_history/v`). */
export function referenceParts(reference: string): { type: string; id: string } | undefined {
  const match = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(reference);
  return match ? { type: match[1], id: match[2] } : undefined;
}
