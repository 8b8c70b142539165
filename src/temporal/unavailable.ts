import { isGrpcServiceError, ServiceError, type Client } from '@temporalio/client';
import { OperationOutcomeError } from '../fhir/outcome-error';

// gRPC status codes of a cluster in trouble rather than of a wrong request: CANCELLED 1 and
// UNKNOWN 2 (a call cut short or failed inside the server, seen from a loaded dev server's
// schedule describe), DEADLINE_EXCEEDED 4, RESOURCE_EXHAUSTED 8, ABORTED 10, INTERNAL 13,
// UNAVAILABLE 14. The client is told to retry (503), never handed a 500 for the cluster's state.
const TRANSIENT = new Set([1, 2, 4, 8, 10, 13, 14]);

/** Whether an error from the Temporal client means "try again later" rather than a bug. */
export function isTemporalUnavailable(err: unknown): boolean {
  const candidates = [err, err instanceof ServiceError ? err.cause : undefined];
  return candidates.some((e) => isGrpcServiceError(e) && TRANSIENT.has(e.code));
}

/**
 * Runs a Temporal call for an HTTP request within `timeoutMs`; an unreachable or overloaded
 * cluster becomes a 503 with a transient OperationOutcome and Retry-After, so clients retry
 * later instead of hanging or giving up.
 */
export async function duringTemporalOutage<T>(
  client: Client,
  call: () => Promise<T>,
  options: { retryAfterSeconds: number; timeoutMs: number },
): Promise<T> {
  try {
    return await client.withDeadline(Date.now() + options.timeoutMs, call);
  } catch (err) {
    if (!isTemporalUnavailable(err)) throw err;
    throw new OperationOutcomeError('transient', 'The workflow service is unavailable; retry later', { retryAfterSeconds: options.retryAfterSeconds });
  }
}
