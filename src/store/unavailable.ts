/**
 * Whether an error from the store means "PostgreSQL cannot be reached now" (down, restarting,
 * refusing connections, the connection cut) rather than a bug or a bad query: the API answers
 * those 503 with Retry-After, as it does while Temporal is unreachable.
 */

/** Connection-level failures: the socket's, and SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown, crash, starting up). */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export function isStoreUnavailable(err: unknown): boolean {
  const candidates = [err, ...(err instanceof AggregateError ? err.errors : []), (err as { cause?: unknown } | null)?.cause];
  return candidates.some((e) => {
    if (!(e instanceof Error)) return false;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK.has(code) || code.startsWith('08') || code.startsWith('57P'))) return true;
    // node-postgres names a connection the server dropped by message only.
    return /^Connection terminated( unexpectedly| due to connection timeout)?$/.test(e.message) || e.message === 'timeout exceeded when trying to connect';
  });
}
