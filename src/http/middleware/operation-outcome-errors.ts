import type { Middleware } from 'koa';
import { operationOutcome, type Issue, type IssueCode } from '../../fhir/operation-outcome';
import { OperationOutcomeError } from '../../fhir/outcome-error';
import type { AppState } from '../app-state';
import { isStoreUnavailable } from '../../store/unavailable';

/** Retry-After of the 503 a client gets while the store cannot be reached. */
export const STORE_RETRY_AFTER_SECONDS = 5;

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** Issue codes for the statuses Koa and its parsers raise on their own. */
function codeForStatus(status: number): IssueCode {
  if (status === 401) return 'login';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 405 || status === 406 || status === 415 || status === 501) return 'not-supported';
  if (status === 408) return 'timeout';
  if (status === 413) return 'too-costly';
  if (status === 429) return 'throttled';
  if (status >= 500) return 'exception';
  return 'invalid';
}

function emptyErrorDiagnostics(status: number, method: string, path: string): string {
  if (status === 404) return `No route for ${method} ${path}`;
  if (status === 405) return `Method ${method} is not allowed on ${path}`;
  if (status === 501) return `Method ${method} is not implemented`;
  return `Request failed with status ${status}`;
}

/**
 * Every error leaves as a FHIR OperationOutcome with the right status: the domain's refusals with theirs,
 * Koa's own 4xx (bad JSON, ...) with their message, the store out of reach as a 503 with
 * Retry-After, anything else as a 500 whose details stay in the log. Error statuses set without a body (unmatched route: 404, wrong method: 405) get one too.
 */
export function operationOutcomeErrors(): Middleware<AppState> {
  return async (ctx, next) => {
    let status: number;
    let issues: Issue[];
    try {
      await next();
      // An error status without a body (no route matched, 405 from the router, ...).
      if (ctx.status < 400 || (ctx.body !== undefined && ctx.body !== null && ctx.body !== '')) return;
      status = ctx.status;
      issues = [{ code: codeForStatus(status), diagnostics: emptyErrorDiagnostics(status, ctx.method, ctx.path) }];
    } catch (err) {
      if (err instanceof OperationOutcomeError) {
        // The domain's refusals, each with the status decided where it was made.
        status = err.status;
        issues = err.issues;
        if (err.options.retryAfterSeconds !== undefined) ctx.set('Retry-After', String(err.options.retryAfterSeconds));
        if (err.options.headers) ctx.set(err.options.headers);
      } else if (isStoreUnavailable(err)) {
        // PostgreSQL down or restarting: the client may come back, as from a Temporal outage.
        status = 503;
        issues = [{ severity: 'error', code: 'transient', diagnostics: 'The resource store is unavailable; retry later' }];
        ctx.set('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
        ctx.state.log?.warn('store unavailable', { err: String((err as Error).message) });
      } else {
        const e = err as { status?: unknown; expose?: unknown; message?: unknown; headers?: Record<string, string> };
        const known = typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true;
        status = known ? (e.status as number) : 500;
        if (known && e.headers) ctx.set(e.headers);
        const diagnostics = known
          ? String(e.message)
          : `Internal server error (request id ${ctx.state.requestId}); the details are in the server log`;
        issues = [{ code: codeForStatus(status), diagnostics }];
        if (!known) ctx.state.log?.error('unhandled error', { err });
      }
    }
    ctx.status = status;
    ctx.type = FHIR_JSON;
    ctx.body = operationOutcome(...issues);
  };
}
