import type { Middleware } from 'koa';
import type { Logger } from '../../log';
import type { AppState } from '../app-state';

/** One structured line per request, with a request-scoped logger left on `ctx.state.log`. */
export function accessLog(log: Logger): Middleware<AppState> {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    ctx.state.log = log.child({ requestId: ctx.state.requestId });
    try {
      await next();
    } finally {
      ctx.state.log.info('request', {
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    }
  };
}
