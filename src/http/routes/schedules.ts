/**
 * The admin API of recurring exports, under `/admin/schedules` (per tenant, like the FHIR API):
 * create, list, read (with the last runs and their manifests), update, pause, unpause,
 * trigger, delete. Each bulkflow schedule is a Temporal Schedule whose action starts a
 * `scheduledExport` run; the watermark and runs live in PostgreSQL (ScheduleLedger).
 */
import type Router from '@koa/router';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleDescription, type ScheduleOptions } from '@temporalio/client';
import type { Context } from 'koa';
import type { ExportSettings } from '../../config';
import { SCHEDULE_ID } from '../../schedules/schedule-definition';
import type { ResourceStore } from '../../store/resource-store';
import type { ScheduleLedger } from '../../store/schedule-ledger';
import type { TemporalGateway } from '../../temporal/gateway';
import type { EngineLimits } from '../../sql/engine-types';
import type { ScheduledExportInput } from '../../contracts/scheduled-export';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { scheduleOptions } from '../schedule-options';
import { readJsonBody } from '../read-json-body';
import { OperationOutcomeError } from '../../fhir/outcome-error';

export interface ScheduleRoutesDependencies {
  temporal: TemporalGateway;
  taskQueue: string;
  exportSettings: ExportSettings;
  store: ResourceStore;
  ledger: ScheduleLedger;
  fhirBasePath: string;
  /** The SQL engine's limits a lake schedule's SQL subjects are checked against. */
  sqlLimits?: EngineLimits;
}

type AppContext = Context & { state: AppState };

/** Temporal Schedule ids are per namespace; bulkflow's are per tenant. */
const temporalScheduleId = (tenant: string, id: string) => `bulkflow.${tenant}.${id}`;
const RUNS_SHOWN = 10;

export function scheduleRouter(deps: ScheduleRoutesDependencies): Router<AppState> {
  const router = newRouter({ prefix: '/admin/schedules' });
  // Schedules are operators' business: every route is access.admin.
  router.post('/', access.admin, (ctx) => create(deps, ctx));
  router.get('/', access.admin, (ctx) => list(deps, ctx));
  router.get('/:id', access.admin, async (ctx) => {
    ctx.body = await view(deps, ctx, await describe(deps, ctx, ctx.params.id), true);
  });
  router.put('/:id', access.admin, (ctx) => update(deps, ctx));
  router.post('/:id/pause', access.admin, (ctx) => pauseOrUnpause(deps, ctx, 'pause'));
  router.post('/:id/unpause', access.admin, (ctx) => pauseOrUnpause(deps, ctx, 'unpause'));
  router.post('/:id/trigger', access.admin, (ctx) => trigger(deps, ctx));
  router.delete('/:id', access.admin, (ctx) => remove(deps, ctx));
  return router;
}

/** The Temporal Schedule of `id` in the caller's tenant (404 when there is none). */
async function describe(deps: ScheduleRoutesDependencies, ctx: AppContext, id: string): Promise<ScheduleDescription> {
  if (!SCHEDULE_ID.test(id)) throw OperationOutcomeError.notFound(`No schedule ${JSON.stringify(id)}`);
  try {
    return await deps.temporal.guarded(() => handle(deps, ctx, id).describe());
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw OperationOutcomeError.notFound(`No schedule ${id}`);
    throw err;
  }
}

const handle = (deps: ScheduleRoutesDependencies, ctx: AppContext, id: string) => deps.temporal.client.schedule.getHandle(temporalScheduleId(ctx.state.tenant, id));

/** A schedule as the admin API shows it: its definition, state, next runs, watermark (and its last runs). */
async function view(deps: ScheduleRoutesDependencies, ctx: AppContext, description: ScheduleDescription, withRuns: boolean) {
  const definition = (description.action.args![0] as ScheduledExportInput).definition;
  const record = await deps.ledger.schedule(ctx.state.tenant, definition.id);
  const running = description.info.runningActions.map((a) => a.workflow.workflowId);
  return {
    ...definition,
    paused: description.state.paused,
    note: description.state.note ?? undefined,
    nextRunTimes: description.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
    running,
    watermark: record.watermark,
    latest: record.latestManifest ? { exportId: record.watermarkExportId, manifest: record.latestManifest } : undefined,
    ...(withRuns ? { runs: await deps.ledger.runs(ctx.state.tenant, definition.id, RUNS_SHOWN) } : {}),
  };
}

/** POST: a new schedule (409 when the id is taken). */
async function create(deps: ScheduleRoutesDependencies, ctx: AppContext): Promise<void> {
  const body = await readJsonBody(ctx);
  const options = await scheduleOptions(deps, ctx, body);
  const paused = (body as { paused?: boolean }).paused === true;
  const create: ScheduleOptions = {
    scheduleId: temporalScheduleId(ctx.state.tenant, options.definition.id),
    spec: options.spec,
    action: options.action,
    policies: options.policies,
    memo: options.memo,
    state: { paused, note: (body as { note?: string }).note ?? (paused ? 'created paused' : undefined) },
  };
  try {
    await deps.temporal.guarded(() => deps.temporal.client.schedule.create(create));
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) throw new OperationOutcomeError('duplicate', `Schedule ${options.definition.id} already exists; PUT /admin/schedules/${options.definition.id} changes it`);
    throw err;
  }
  ctx.status = 201;
  ctx.set('Location', `${ctx.state.fhirBaseUrl.slice(0, ctx.state.fhirBaseUrl.length - deps.fhirBasePath.length)}/admin/schedules/${options.definition.id}`);
  ctx.body = await view(deps, ctx, await describe(deps, ctx, options.definition.id), false);
}

/** GET: the tenant's schedules, by id. */
async function list(deps: ScheduleRoutesDependencies, ctx: AppContext): Promise<void> {
  const ids: string[] = [];
  await deps.temporal.guarded(async () => {
    for await (const summary of deps.temporal.client.schedule.list()) {
      if (summary.memo?.tenant === ctx.state.tenant && typeof summary.memo.scheduleId === 'string') ids.push(summary.memo.scheduleId);
    }
  });
  ids.sort();
  const schedules = [];
  for (const id of ids) {
    try {
      schedules.push(await view(deps, ctx, await describe(deps, ctx, id), false));
    } catch (err) {
      if (!(err instanceof OperationOutcomeError && err.status === 404)) throw err; // deleted meanwhile
    }
  }
  ctx.body = { schedules };
}

/** PUT: the schedule redefined in place (its paused state kept unless the body says). */
async function update(deps: ScheduleRoutesDependencies, ctx: AppContext): Promise<void> {
  await describe(deps, ctx, ctx.params.id);
  const body = await readJsonBody(ctx);
  const options = await scheduleOptions(deps, ctx, body, ctx.params.id);
  const paused = (body as { paused?: boolean }).paused;
  await deps.temporal.guarded(() =>
    handle(deps, ctx, ctx.params.id).update((previous) => ({ ...previous, spec: options.spec, action: options.action, policies: options.policies, state: { ...previous.state, ...(paused !== undefined ? { paused } : {}) } })),
  );
  ctx.body = await view(deps, ctx, await describe(deps, ctx, ctx.params.id), false);
}

/** Pause or unpause, with an optional note. */
async function pauseOrUnpause(deps: ScheduleRoutesDependencies, ctx: AppContext, what: 'pause' | 'unpause'): Promise<void> {
  await describe(deps, ctx, ctx.params.id);
  const body = ctx.request.length || ctx.get('Transfer-Encoding') ? await readJsonBody(ctx) : {}; // the body is optional
  const text = (body as { note?: unknown }).note;
  if (text !== undefined && typeof text !== 'string') throw OperationOutcomeError.invalid('note must be a string', 'note');
  await deps.temporal.guarded(() => handle(deps, ctx, ctx.params.id)[what](text ?? `${what}d through the admin API`));
  ctx.body = await view(deps, ctx, await describe(deps, ctx, ctx.params.id), false);
}

/** Starts a run now (also while paused); refused (409), as a tick would skip it, while a run is going. */
async function trigger(deps: ScheduleRoutesDependencies, ctx: AppContext): Promise<void> {
  const before = await describe(deps, ctx, ctx.params.id);
  if (before.info.runningActions.length > 0) {
    throw new OperationOutcomeError('conflict', `Schedule ${ctx.params.id} has a run going (${before.info.runningActions[0].workflow.workflowId}); a trigger would be skipped`);
  }
  await deps.temporal.guarded(() => handle(deps, ctx, ctx.params.id).trigger(ScheduleOverlapPolicy.SKIP));
  ctx.status = 202;
  ctx.body = await view(deps, ctx, before, false);
}

/** Removes the Temporal Schedule; the watermark stays, so recreating the id goes on from it. */
async function remove(deps: ScheduleRoutesDependencies, ctx: AppContext): Promise<void> {
  await describe(deps, ctx, ctx.params.id);
  await deps.temporal.guarded(() => handle(deps, ctx, ctx.params.id).delete());
  ctx.status = 204;
}
