import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { AppState } from '../app-state';

const acceptable = /^[A-Za-z0-9._:-]{1,128}$/;

/** Gives every request an id (the caller's `X-Request-Id` if it is sane) and echoes it back. */
export function requestId(): Middleware<AppState> {
  return async (ctx, next) => {
    const offered = ctx.get('X-Request-Id');
    ctx.state.requestId = acceptable.test(offered) ? offered : randomUUID();
    ctx.set('X-Request-Id', ctx.state.requestId);
    await next();
  };
}
