/**
 * A schedule definition from the admin API, checked (every problem in one OperationOutcome,
 * schedule-definition.ts; its Group known), turned into what the Temporal Schedule is made of:
 * its spec, its action (a `scheduledExport` run with the export it makes), its policies and memo.
 * Checks and shapes only: nothing is created here.
 */
import { ScheduleOverlapPolicy, type ScheduleSpec } from '@temporalio/client';
import type { Context } from 'koa';
import type { ExportSettings } from '../config';
import type { ScheduledExportInput } from '../contracts/scheduled-export';
import { OperationOutcomeError } from '../fhir/outcome-error';
import { checkScheduleDefinition, scheduledRequestPath } from '../schedules/schedule-definition';
import type { ResourceStore } from '../store/resource-store';
import { exportScheduleKey, exportTenantKey } from '../temporal/search-attribute-registry';
import { scheduledExport } from '../../workflows/scheduled-export';
import type { AppState } from './app-state';
import { ownerOf } from './authorize';

type AppContext = Context & { state: AppState };
type ScheduleRoutesDependencies = { store: ResourceStore; exportSettings: ExportSettings; taskQueue: string };

/** What the Temporal Schedule is made of, from a checked definition. */
export async function scheduleOptions(deps: Pick<ScheduleRoutesDependencies, 'store' | 'exportSettings' | 'taskQueue'>, ctx: AppContext, body: unknown, id?: string) {
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
}
