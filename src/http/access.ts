/**
 * Who may call a route, declared on the route itself: its first middleware is `access.public`,
 * `access.credentials`, `access.token` or `access.admin`. The declaration also says whether a
 * cache may keep the answer: whatever depends on the caller's token or hands out a credential is
 * `Cache-Control: no-store`, set before the check so refusals carry it too. The router that matched the request runs that check, so no
 * second matcher can disagree with it, and `declaredRoutes` refuses an app with a route that
 * declares nothing, matches paths case-insensitively, or runs middleware ahead of the check.
 */
import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { AccessLevel, AppState } from './app-state';

/** `public`: anyone (discovery, the token endpoint); `token`: a verified caller of the tenant; `admin`: an operator token. */
export type { AccessLevel, Authorize } from './app-state';

/** `shared`: the same for every caller (discovery), a cache may keep it; `no-store`: never kept. */
export type CachePolicy = 'shared' | 'no-store';

const DECLARED = Symbol('bulkflow.access');
type Declaration = Middleware<AppState> & { [DECLARED]: { level: AccessLevel; cache: CachePolicy } };

function declaration(level: AccessLevel, cache: CachePolicy): Declaration {
  const check: Middleware<AppState> = async (ctx, next) => {
    // Without the authorization middleware the app is miswired: refuse rather than serve.
    if (!ctx.state.authorize) throw new Error(`${ctx.method} ${ctx.path}: no authorization middleware ahead of the router`);
    if (cache === 'no-store') ctx.set('Cache-Control', 'no-store');
    await ctx.state.authorize(level);
    return next();
  };
  return Object.assign(check, { [DECLARED]: { level, cache } });
}

export const access = {
  /** Discovery: anyone, and the same answer for everyone. */
  public: declaration('public', 'shared'),
  /** Anyone may ask, but the answer is a credential (the token endpoint). */
  credentials: declaration('public', 'no-store'),
  token: declaration('token', 'no-store'),
  admin: declaration('admin', 'no-store'),
} as const;

/** Every router of the app: paths match case-sensitively, as FHIR's do. */
export function newRouter(options: { prefix?: string } = {}): Router<AppState> {
  return new Router<AppState>({ ...options, sensitive: true });
}

export interface DeclaredRoute {
  methods: string[];
  path: string;
  access: AccessLevel;
  cache: CachePolicy;
}

/** The routes of `router` with their access; throws naming every route that breaks the rules above. */
export function declaredRoutes(router: Router<AppState>): DeclaredRoute[] {
  const routes: DeclaredRoute[] = [];
  const refused: string[] = [];
  for (const layer of router.stack) {
    const name = `${layer.methods.join(',') || 'middleware'} ${String(layer.path)}`;
    const declared = (layer.stack[0] as Partial<Declaration> | undefined)?.[DECLARED];
    if (layer.methods.length === 0) refused.push(`${name}: middleware would run before any route's access check`);
    else if (!declared) refused.push(`${name}: declares no access`);
    else if (!layer.opts.sensitive) refused.push(`${name}: matches case-insensitively`);
    else routes.push({ methods: [...layer.methods], path: String(layer.path), access: declared.level, cache: declared.cache });
  }
  if (refused.length > 0) throw new Error(`Refusing to serve undeclared routes:\n${refused.join('\n')}`);
  return routes;
}
