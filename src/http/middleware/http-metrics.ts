import type { Middleware } from 'koa';
import type { ApiMetrics } from '../../metrics/metrics';
import type { AppState } from '../app-state';

/**
 * Counts and times every request by the pattern of the route that answered it (`/fhir/bulkstatus/:id`,
 * never the id: labels stay bounded), and counts the exports kick-offs started.
 */
export function httpMetrics(metrics: ApiMetrics): Middleware<AppState> {
  return async (ctx, next) => {
    const stop = metrics.httpDuration.startTimer();
    try {
      await next();
    } finally {
      const route = (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      stop({ method: ctx.method, route });
      metrics.httpRequests.inc({ method: ctx.method, route, status: String(ctx.status) });
      const started = ctx.state.exportStarted;
      if (started) metrics.exportsStarted.inc({ kind: started.kind, level: started.level, tenant: ctx.state.tenant });
    }
  };
}
