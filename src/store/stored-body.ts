/**
 * A stored body that is not JSON (written around bulkflow, or damaged) can never be exported:
 * retrying reads the same bytes. It is named by type and id, never quoted: the message reaches
 * logs and the client, the body is health data.
 */
export class UnreadableResourceError extends Error {
  constructor(
    readonly resourceType: string,
    readonly id: string | undefined,
  ) {
    super(`${resourceType}/${id ?? '(id unreadable)'} in the store is not valid JSON`);
    this.name = 'UnreadableResourceError';
  }
}

/** The store writes every body as `{"resourceType":...,"id":...,"meta":...` (prepared-resource.ts): its id is readable even when the rest is not. */
const ID = /^\{"resourceType":"[A-Za-z]+","id":"([A-Za-z0-9\-.]{1,64})"/;

export function parseStoredBody(text: string, resourceType: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new UnreadableResourceError(resourceType, ID.exec(text)?.[1]);
  }
}
