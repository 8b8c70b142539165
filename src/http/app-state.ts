import type { Caller } from '../auth/access-tokens';
import type { Logger } from '../log';

/** Who may call a route (access.ts declares one per route). */
export type AccessLevel = 'public' | 'token' | 'admin';

/** The request's check against a level; the authorization middleware leaves it on `ctx.state`. */
export type Authorize = (level: AccessLevel) => Promise<void>;

/** Request-scoped data that middleware leaves on `ctx.state`. */
export interface AppState {
  requestId: string;
  log: Logger;
  /** Absolute URL of the FHIR base as this request's client sees it (see public-origin.ts). */
  fhirBaseUrl: string;
  /** The client's address: the TCP peer, or what a trusted proxy says it forwarded for (middleware/forwarded.ts). */
  clientAddress: string;
  /** The tenant whose data this request reads and writes (see middleware/tenant.ts). */
  tenant: string;
  /** The check a route's access declaration runs (see middleware/authorization.ts). */
  authorize?: Authorize;
  /** The verified caller, when authorization is on and the route needs a token. */
  caller?: Caller;
  /** Set by a kick-off that started an export: what the metrics count it as. */
  exportStarted?: { kind: 'bulk' | 'view'; level: string };
}
