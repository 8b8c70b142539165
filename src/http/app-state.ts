import type { Logger } from '../log';

/** Request-scoped data that middleware leaves on `ctx.state`. */
export interface AppState {
  requestId: string;
  log: Logger;
}
