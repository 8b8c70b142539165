/** What a verified caller may do: checks used by the routes (no-ops while authorization is off). */
import type { Context } from 'koa';
import type { Permission } from '../auth/scopes';
import type { AppState } from './app-state';
import { NO_SUCH_JOB } from './job-state';
import { OperationOutcomeError } from '../fhir/outcome-error';

type AppContext = Context & { state: AppState };

const PERMISSION_NAMES: Record<Permission, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

/** Whether the caller's scopes grant `permission` on `type` (always, while authorization is off). */
export function mayAccess(ctx: AppContext, type: string, permission: Permission): boolean {
  return !ctx.state.caller || ctx.state.caller.scopes.allows(type, permission);
}

/** 403 unless the caller's scopes grant `permission` on `type`. */
export function requirePermission(ctx: AppContext, type: string, permission: Permission): void {
  const caller = ctx.state.caller;
  if (caller && !caller.scopes.allows(type, permission)) {
    throw new OperationOutcomeError('forbidden', `The access token does not grant ${PERMISSION_NAMES[permission]} on ${type} (system/${type}.${permission})`);
  }
}

/** 403 unless the caller may read some type (views read data: refused before their request is parsed). */
export function requireSomeRead(ctx: AppContext): void {
  const caller = ctx.state.caller;
  if (caller && !caller.scopes.readsAnything) throw new OperationOutcomeError('forbidden', 'The access token grants read access to no resource type; running a view needs read on the type it reads');
}

/**
 * A job answers only in its own tenant, and only to the client that started it (or an admin):
 * anyone else gets 404, not 403, so job ids do not leak.
 */
export function requireJobAccess(ctx: AppContext, job: { owner?: string; tenant?: string }): void {
  if (job.tenant !== undefined && job.tenant !== ctx.state.tenant) throw OperationOutcomeError.notFound(NO_SUCH_JOB);
  const caller = ctx.state.caller;
  if (caller && job.owner !== caller.owner && !caller.scopes.admin) throw OperationOutcomeError.notFound(NO_SUCH_JOB);
}

/** The owner recorded on jobs this request starts. */
export const ownerOf = (ctx: AppContext) => ctx.state.caller?.owner ?? 'anonymous';
