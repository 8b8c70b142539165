/**
 * The admin API of recurring exports, under `/admin/schedules` (per tenant, like the FHIR API):
 * create, list, read (with the last runs and their manifests), update, pause, unpause,
 * trigger, delete. Each bulkflow schedule is a Temporal Schedule whose action starts a
 * `scheduledExport` run; the watermark and runs live in PostgreSQL (ScheduleLedger).
 */
import type Router from '@koa/router';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type ScheduleDescription,
  type ScheduleOptions,
  type ScheduleSpec,
} from '@temporalio/client';
import type { Context } from 'koa';
import type { ExportSettings } from '../../config';
import { checkScheduleDefinition, scheduledRequestPath, SCHEDULE_ID } from '../../schedules/schedule-definition';
import type { ResourceStore } from '../../store/resource-store';
import type { ScheduleLedger } from '../../store/schedule-ledger';
import { exportScheduleKey, exportTenantKey } from '../../temporal/search-attribute-registry';
import type { TemporalGateway } from '../../temporal/gateway';
import { scheduledExport } from '../../../workflows/scheduled-export';
import type { ScheduledExportInput } from '../../contracts/scheduled-export';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { ownerOf } from '../authorize';
import { readJsonBody } from '../read-json-body';
import { OperationOutcomeError } from '../../fhir/outcome-error';

export interface ScheduleRoutesDependencies {
  temporal: TemporalGateway;
  taskQueue: string;
  exportSettings: ExportSettings;
  store: ResourceStore;
  ledger: ScheduleLedger;
  fhirBasePath: string;
}

type AppContext = Context & { state: AppState };

/** Temporal Schedule ids are per namespace; bulkflow's are per tenant. */
const temporalScheduleId = (tenant: string, id: string) => `bulkflow.${tenant}.${id}`;
const RUNS_SHOWN = 10;

export function scheduleRouter(deps: ScheduleRoutesDependencies): Router<AppState> {
  const router = newRouter({ prefix: '/admin/schedules' });

  // Schedules are operators' business: every route is access.admin.

  /** The Temporal Schedule of `id` in the caller's tenant (404 when there is none). */
  const describe = async (ctx: AppContext, id: string): Promise<ScheduleDescription> => {
    if (!SCHEDULE_ID.test(id)) throw OperationOutcomeError.notFound(`No schedule ${JSON.stringify(id)}`);
    try {
      return await deps.temporal.guarded(() => deps.temporal.client.schedule.getHandle(temporalScheduleId(ctx.state.tenant, id)).describe());
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) throw OperationOutcomeError.notFound(`No schedule ${id}`);
      throw err;
    }
  };
  const handle = (ctx: AppContext, id: string) => deps.temporal.client.schedule.getHandle(temporalScheduleId(ctx.state.tenant, id));

  /** What the Temporal Schedule is made of, from a checked definition. */
  const scheduleOptions = async (ctx: AppContext, body: unknown, id?: string) => {
    const { definition, request, retentionMs } = checkScheduleDefinition(body, id);
    if (definition.group) {
      const group = await deps.store.forTenant(ctx.state.tenant).read('Group', definition.group);
      if (!group || group.deleted) throw OperationOutcomeError.invalid(`Group/${definition.group} is not known`, 'group');
    }
    const tenant = ctx.state.tenant;
    const input: ScheduledExportInput = {
      scheduleId: definition.id,
      tenant,
      owner: ownerOf(ctx),
      request: `${ctx.state.fhirBaseUrl}${scheduledRequestPath(definition)}`,
      export: {
        level: definition.level,
        window: { tenant, compartment: definition.level === 'system' ? undefined : { groupId: definition.group } },
        types: request.types,
        elements: request.elements,
        typeFilters: request.typeFilters,
        associatedProvenance: request.associatedProvenance,
        organizeOutputBy: request.organizeOutputBy,
        lenientIssues: [],
        tuning: { ...deps.exportSettings, ...(retentionMs ? { retentionMs } : {}) },
      },
      start: definition.start,
      outputPrefix: definition.outputPrefix,
      fhirBaseUrl: ctx.state.fhirBaseUrl,
      webhookUrl: definition.webhook,
      definition,
    };
    const spec: ScheduleSpec = definition.every
      ? { intervals: [{ every: definition.every as `${number}s` }] }
      : { cronExpressions: [definition.cron!], ...(definition.timeZone ? { timezone: definition.timeZone } : {}) };
    const what = definition.level === 'group' ? `Group ${definition.group}` : definition.level === 'patient' ? 'Patient' : 'System';
    return {
      definition,
      spec,
      action: {
        type: 'startWorkflow' as const,
        workflowType: scheduledExport,
        taskQueue: deps.taskQueue,
        workflowId: `scheduled-export.${tenant}.${definition.id}`, // Temporal appends each run's time
        args: [input] as [ScheduledExportInput],
        staticSummary: `Scheduled ${what} export run of schedule ${definition.id} (tenant ${tenant})`,
        typedSearchAttributes: [
          { key: exportScheduleKey, value: definition.id },
          { key: exportTenantKey, value: tenant },
        ],
      },
      // A run still going (exporting, or recording its watermark) makes the next tick skip.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' as const, pauseOnFailure: false },
      memo: { tenant, scheduleId: definition.id },
    };
  };

  const view = async (ctx: AppContext, description: ScheduleDescription, withRuns: boolean) => {
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
  };

  router.post('/', access.admin, async (ctx) => {
    const body = await readJsonBody(ctx);
    const options = await scheduleOptions(ctx, body);
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
    ctx.body = await view(ctx, await describe(ctx, options.definition.id), false);
  });

  router.get('/', access.admin, async (ctx) => {
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
        schedules.push(await view(ctx, await describe(ctx, id), false));
      } catch (err) {
        if (!(err instanceof OperationOutcomeError && err.status === 404)) throw err; // deleted meanwhile
      }
    }
    ctx.body = { schedules };
  });

  router.get('/:id', access.admin, async (ctx) => {
    ctx.body = await view(ctx, await describe(ctx, ctx.params.id), true);
  });

  router.put('/:id', access.admin, async (ctx) => {
    await describe(ctx, ctx.params.id);
    const body = await readJsonBody(ctx);
    const options = await scheduleOptions(ctx, body, ctx.params.id);
    await deps.temporal.guarded(() =>
      handle(ctx, ctx.params.id).update((previous) => ({
        ...previous,
        spec: options.spec,
        action: options.action,
        policies: options.policies,
        state: {
          ...previous.state,
          ...((body as { paused?: boolean }).paused !== undefined ? { paused: (body as { paused: boolean }).paused } : {}),
        },
      })),
    );
    ctx.body = await view(ctx, await describe(ctx, ctx.params.id), false);
  });

  const note = async (ctx: AppContext) => {
    const body = ctx.request.length || ctx.get('Transfer-Encoding') ? await readJsonBody(ctx) : {}; // the body is optional
    const text = (body as { note?: unknown }).note;
    if (text !== undefined && typeof text !== 'string') throw OperationOutcomeError.invalid('note must be a string', 'note');
    return text;
  };

  router.post('/:id/pause', access.admin, async (ctx) => {
    await describe(ctx, ctx.params.id);
    const text = await note(ctx);
    await deps.temporal.guarded(() => handle(ctx, ctx.params.id).pause(text ?? 'paused through the admin API'));
    ctx.body = await view(ctx, await describe(ctx, ctx.params.id), false);
  });

  router.post('/:id/unpause', access.admin, async (ctx) => {
    await describe(ctx, ctx.params.id);
    const text = await note(ctx);
    await deps.temporal.guarded(() => handle(ctx, ctx.params.id).unpause(text ?? 'unpaused through the admin API'));
    ctx.body = await view(ctx, await describe(ctx, ctx.params.id), false);
  });

  /** Starts a run now (also while paused); skipped, like a tick, while a run is going. */
  router.post('/:id/trigger', access.admin, async (ctx) => {
    const before = await describe(ctx, ctx.params.id);
    if (before.info.runningActions.length > 0) {
      throw new OperationOutcomeError('conflict', `Schedule ${ctx.params.id} has a run going (${before.info.runningActions[0].workflow.workflowId}); a trigger would be skipped`);
    }
    await deps.temporal.guarded(() => handle(ctx, ctx.params.id).trigger(ScheduleOverlapPolicy.SKIP));
    ctx.status = 202;
    ctx.body = await view(ctx, before, false);
  });

  /** Removes the Temporal Schedule; the watermark stays, so recreating the id goes on from it. */
  router.delete('/:id', access.admin, async (ctx) => {
    await describe(ctx, ctx.params.id);
    await deps.temporal.guarded(() => handle(ctx, ctx.params.id).delete());
    ctx.status = 204;
  });

  return router;
}
