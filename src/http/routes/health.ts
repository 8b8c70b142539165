/**
 * Health for load balancers and orchestrators, beside the FHIR base and public (they carry no
 * data): `GET /healthz` answers while the process serves requests; `GET /readyz` answers 200 only
 * when PostgreSQL and Temporal both answer within a deadline, else 503 with an OperationOutcome
 * naming what did not (each checked at once, so one slow part does not hide the other).
 */
import type Router from '@koa/router';
import { Connection, type Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { operationOutcome } from '../../fhir/operation-outcome';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';

const CHECK_DEADLINE_MS = 2000;

async function within(what: string, work: () => Promise<unknown>): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([work(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_DEADLINE_MS} ms`)), CHECK_DEADLINE_MS)))]);
    return undefined;
  } catch (err) {
    return `${what}: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}

export function healthRouter(deps: { pool?: Pool; temporal?: Client }): Router<AppState> {
  const router = newRouter();
  // Its own connection, without the client's retries: a check asks once and gives up at its deadline.
  let probeConnection: Connection | undefined;
  const probe = () => (probeConnection ??= Connection.lazy({ ...(deps.temporal!.connection as Connection).options, interceptors: [] }));

  router.get('/healthz', access.public, (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', access.public, async (ctx) => {
    const problems = (
      await Promise.all([
        deps.pool ? within('PostgreSQL', () => deps.pool!.query('SELECT 1')) : undefined,
        deps.temporal
          ? within('Temporal', () => {
              const connection = probe();
              return connection.withDeadline(Date.now() + CHECK_DEADLINE_MS, () => connection.healthService.check({}));
            })
          : undefined,
      ])
    ).filter((p): p is string => p !== undefined);
    if (problems.length === 0) {
      ctx.body = { status: 'ready', postgres: deps.pool ? 'ok' : 'not used', temporal: deps.temporal ? 'ok' : 'not used' };
      return;
    }
    ctx.status = 503;
    ctx.set('Retry-After', '5');
    ctx.type = FHIR_JSON;
    ctx.body = operationOutcome(...problems.map((diagnostics) => ({ severity: 'error' as const, code: 'transient' as const, diagnostics: `Not ready: ${diagnostics}` })));
  });

  return router;
}
