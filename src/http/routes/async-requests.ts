/**
 * `Prefer: respond-async` on ordinary requests (a type search, a batch Bundle): each runs as an
 * `asyncRequest` workflow. Answered synchronously when it finishes within `syncWaitMs`, else 202
 * with `Content-Location` = `[base]/async/{id}`, which answers 202 while running and then
 * `303 See Other` to `[base]/async/{id}/result`: a `batch-response` Bundle whose entry carries
 * the original response (status and resource).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { operationOutcome } from '../../fhir/operation-outcome';
import { asyncRequestKey } from '../../output/file-keys';
import { readText, writeText, type OutputStore } from '../../output/output-store';
import type { TemporalGateway } from '../../temporal/gateway';
import { asyncRequest, asyncStatusQuery } from '../../../workflows/async-request';
import type { AsyncRequestInput, AsyncRequestStatus } from '../../contracts/async-request';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { jobState, failedJobError } from '../job-state';
import { ownerOf, requireJobAccess } from '../authorize';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';
import { OperationOutcomeError } from '../../fhir/outcome-error';

export interface AsyncRequestsDependencies {
  temporal: TemporalGateway;
  taskQueue: string;
  output: OutputStore;
  /** How long responses stay available (ms). */
  retentionMs: number;
  /** How long a running request may go without a heartbeat (EXPORT_HEARTBEAT_TIMEOUT_SECONDS). */
  heartbeatTimeoutMs: number;
  /** Answer synchronously when the response is ready within this long (ms). */
  syncWaitMs: number;
  retryAfterSeconds: number;
}

/** The request to run: a type search (already checked) or a batch or transaction Bundle. */
export type AsyncWork = { kind: 'search'; search: NonNullable<AsyncRequestInput['search']> } | { kind: 'batch'; bundle: Record<string, unknown> };

type AppContext = Context & { state: AppState };

const reasonPhrase: Record<number, string> = { 200: 'OK', 201: 'Created', 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 410: 'Gone', 422: 'Unprocessable Entity' };

/** Whether the request asked to be answered asynchronously. */
export const prefersAsync = (ctx: Context) =>
  ctx
    .get('Prefer')
    .split(/[,;]/)
    .some((t) => t.trim().toLowerCase() === 'respond-async');

/**
 * A batch's POST entries get their ids now, as PUTs to those ids: the stored request then
 * creates the same resources however often the activity is retried.
 */
function withAssignedIds(bundle: Record<string, unknown>): Record<string, unknown> {
  const entries = Array.isArray(bundle.entry) ? (bundle.entry as Array<Record<string, unknown>>) : [];
  return {
    ...bundle,
    entry: entries.map((entry) => {
      const request = entry.request as { method?: string; url?: string } | undefined;
      const resource = entry.resource as { resourceType?: unknown } | undefined;
      if (request?.method !== 'POST' || !resource || typeof resource.resourceType !== 'string' || !/^[A-Z][A-Za-z]+$/.test(request.url ?? '')) return entry;
      const id = randomUUID();
      return { ...entry, resource: { ...resource, id }, request: { ...request, method: 'PUT', url: `${request.url}/${id}` } };
    }),
  };
}

export class AsyncRequests {
  constructor(private readonly deps: AsyncRequestsDependencies) {}

  /** Starts the work as a workflow; answers with its response if ready within syncWaitMs, else 202. */
  async respond(ctx: AppContext, work: AsyncWork): Promise<void> {
    const requestId = randomBytes(16).toString('base64url');
    let requestKey: string | undefined;
    if (work.kind === 'batch') {
      requestKey = asyncRequestKey(ctx.state.tenant, requestId);
      await writeText(this.deps.output, requestKey, JSON.stringify(withAssignedIds(work.bundle)));
    }
    const input: AsyncRequestInput = {
      requestId,
      tenant: ctx.state.tenant,
      kind: work.kind,
      fhirBaseUrl: ctx.state.fhirBaseUrl,
      ...(work.kind === 'search' ? { search: work.search } : { requestKey }),
      retentionMs: this.deps.retentionMs,
      heartbeatTimeoutMs: this.deps.heartbeatTimeoutMs,
    };
    const handle = await this.deps.temporal.start(asyncRequest, {
      taskQueue: this.deps.taskQueue,
      workflowId: requestId,
      args: [input],
      memo: { kind: work.kind, owner: ownerOf(ctx), tenant: ctx.state.tenant },
    });

    // Clients must handle both answers: a quick request is answered as if it were synchronous.
    const deadline = Date.now() + this.deps.syncWaitMs;
    while (Date.now() < deadline) {
      const status = await this.deps.temporal.client
        .withDeadline(Math.max(deadline, Date.now() + 50), () => handle.query(asyncStatusQuery))
        .catch(() => undefined);
      if (status?.phase === 'completed') {
        const body = await readText(this.deps.output, status.responseKey!);
        if (body !== undefined) {
          ctx.status = status.httpStatus!;
          ctx.type = FHIR_JSON;
          ctx.body = body;
          return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    ctx.status = 202;
    ctx.set('Content-Location', `${ctx.state.fhirBaseUrl}/async/${requestId}`);
    ctx.type = FHIR_JSON;
    ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: `Request ${requestId} accepted` });
  }

  private async state(ctx: AppContext, id: string) {
    const state = await jobState<AsyncRequestStatus>(this.deps.temporal, id, 'asyncRequest', asyncStatusQuery);
    requireJobAccess(ctx, state);
    return state;
  }

  router(): Router<AppState> {
    const router = newRouter();

    router.get('/async/:id', access.token, async (ctx) => {
      const state = await this.state(ctx, ctx.params.id);
      if (state.kind === 'failed' || state.status?.phase === 'completed') {
        ctx.status = 303;
        ctx.set('Location', `${ctx.state.fhirBaseUrl}/async/${ctx.params.id}/result`);
        ctx.body = '';
        return;
      }
      ctx.status = 202;
      ctx.set('Retry-After', String(this.deps.retryAfterSeconds));
      ctx.set('X-Progress', 'in progress');
      ctx.body = '';
    });

    router.get('/async/:id/result', access.token, async (ctx) => {
      const state = await this.state(ctx, ctx.params.id);
      if (state.kind === 'failed') throw failedJobError(state, 'request');
      const status = state.status;
      if (!status || status.phase !== 'completed') throw OperationOutcomeError.notFound('The request has no result yet');
      const body = await readText(this.deps.output, status.responseKey!);
      if (body === undefined) throw OperationOutcomeError.notFound('The result has expired');
      const code = status.httpStatus!;
      ctx.status = 200;
      ctx.set('Expires', new Date(status.expiresAt!).toUTCString());
      ctx.type = FHIR_JSON;
      // The original response is JSON text already: splice it in (an error's body is the entry's outcome).
      const statusText = JSON.stringify(`${code} ${reasonPhrase[code] ?? ''}`.trim());
      const entry = code < 300 ? `{"resource":${body},"response":{"status":${statusText}}}` : `{"response":{"status":${statusText},"outcome":${body}}}`;
      ctx.body = `{"resourceType":"Bundle","type":"batch-response","entry":[${entry}]}`;
    });

    router.delete('/async/:id', access.token, async (ctx) => {
      await this.state(ctx, ctx.params.id);
      await this.deps.temporal.cancel(ctx.params.id);
      ctx.status = 202;
      ctx.type = FHIR_JSON;
      ctx.body = operationOutcome({ severity: 'information', code: 'informational', diagnostics: 'The request was cancelled; its response is being deleted' });
    });

    return router;
  }
}
