/**
 * A schedule definition from the admin API, checked (every problem in one OperationOutcome,
 * schedule-definition.ts; its Group known), turned into what the Temporal Schedule is made of:
 * its spec, its action (a `scheduledExport` run with the export it makes), its policies and memo.
 * Checks and shapes only: nothing is created here.
 */
import { ScheduleOverlapPolicy, type ScheduleOptionsAction, type ScheduleSpec } from '@temporalio/client';
import type { Context } from 'koa';
import type { ExportSettings } from '../config';
import type { ScheduledExportInput } from '../contracts/scheduled-export';
import { OperationOutcomeError } from '../fhir/outcome-error';
import { checkScheduleDefinition, scheduledRequestPath, type CheckedSchedule } from '../schedules/schedule-definition';
import { lakeSubjects } from '../schedules/lake-subjects';
import type { ScheduledViewExportInput } from '../contracts/lake-export';
import type { ScheduleDefinition } from '../contracts/scheduled-export';
import type { EngineLimits } from '../sql/engine-types';
import { parquetColumns } from '../views/parquet-columns';
import { compileView } from '../views/view-definition';
import { scheduledViewExport } from '../../workflows/scheduled-view-export';
import { checkedSubjects } from './view-export-subjects';
import { checkExportScope } from './export-scope';
import type { ResourceStore } from '../store/resource-store';
import { exportScheduleKey, exportTenantKey } from '../temporal/search-attribute-registry';
import { scheduledExport } from '../../workflows/scheduled-export';
import type { AppState } from './app-state';
import { ownerOf } from './authorize';

type AppContext = Context & { state: AppState };
type ScheduleRoutesDependencies = { store: ResourceStore; exportSettings: ExportSettings; taskQueue: string; sqlLimits?: EngineLimits };

/** What the Temporal Schedule is made of, from a checked definition. */
export async function scheduleOptions(deps: Pick<ScheduleRoutesDependencies, 'store' | 'exportSettings' | 'taskQueue' | 'sqlLimits'>, ctx: AppContext, body: unknown, id?: string) {
  const checked = checkScheduleDefinition(body, id);
  if (checked.kind === 'lake') return lakeScheduleOptions(deps, ctx, checked);
  const { definition, request, retentionMs } = checked;
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
  const what = definition.level === 'group' ? `Group ${definition.group}` : definition.level === 'patient' ? 'Patient' : 'System';
  return scheduleParts(deps, definition, tenant, {
    workflowType: scheduledExport,
    workflowId: `scheduled-export.${tenant}.${definition.id}`, // Temporal appends each run's time
    args: [input],
    staticSummary: `Scheduled ${what} export run of schedule ${definition.id} (tenant ${tenant})`,
  });
}

/** The Temporal Schedule of a checked definition whose action starts `run` with the schedule's search attributes. */
function scheduleParts(
  deps: Pick<ScheduleRoutesDependencies, 'taskQueue'>,
  definition: ScheduleDefinition,
  tenant: string,
  run: { workflowType: typeof scheduledExport | typeof scheduledViewExport; workflowId: string; args: [ScheduledExportInput] | [ScheduledViewExportInput]; staticSummary: string },
) {
  return {
    definition,
    spec: specOf(definition),
    action: {
      type: 'startWorkflow' as const,
      taskQueue: deps.taskQueue,
      ...run,
      typedSearchAttributes: [
        { key: exportScheduleKey, value: definition.id },
        { key: exportTenantKey, value: tenant },
      ],
    } as ScheduleOptionsAction,
    policies: POLICIES,
    memo: { tenant, scheduleId: definition.id },
  };
}

// A run still going (exporting, or recording its watermark) makes the next tick skip.
const POLICIES = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' as const, pauseOnFailure: false };

const specOf = (definition: ScheduleDefinition): ScheduleSpec =>
  definition.every
    ? { intervals: [{ every: definition.every as `${number}s` }] }
    : { cronExpressions: [definition.cron!], ...(definition.timeZone ? { timezone: definition.timeZone } : {}) };

/**
 * A lake schedule: its `sqlExport` checked exactly as a `$sql-export` kick-off (the caller's read
 * access, every subject resolved and compiled, the Group or patients known), its subjects made
 * into tables (lake-subjects.ts); each run a `scheduledViewExport`.
 */
async function lakeScheduleOptions(deps: Pick<ScheduleRoutesDependencies, 'store' | 'exportSettings' | 'taskQueue' | 'sqlLimits'>, ctx: AppContext, checked: Extract<CheckedSchedule, { kind: 'lake' }>) {
  const { definition, viewRequest, retentionMs } = checked;
  const tenant = ctx.state.tenant;
  const store = deps.store.forTenant(tenant);
  await checkExportScope(store, { groupId: viewRequest.groupId, patientIds: viewRequest.patientIds });
  const resolved = await within('sqlExport', () => checkedSubjects(ctx, store, viewRequest, deps.sqlLimits));
  const subjects = lakeSubjects(resolved, viewRequest.subjects.map((s) => s.subject), definition.mode!);
  if (viewRequest.format === 'parquet') for (const s of subjects) if (s.view) await parquetColumns(compileView(s.view.definition).columns);
  const compartment = viewRequest.groupId || viewRequest.patientIds ? { groupId: viewRequest.groupId, patientIds: viewRequest.patientIds } : undefined;
  const input: ScheduledViewExportInput = {
    scheduleId: definition.id,
    tenant,
    owner: ownerOf(ctx),
    request: `${ctx.state.fhirBaseUrl}/$sql-export`,
    subjects,
    format: viewRequest.format,
    header: viewRequest.header,
    ...(compartment ? { compartment } : {}),
    destination: definition.destination!,
    ...(definition.fullEvery ? { fullEvery: definition.fullEvery } : {}),
    ...(retentionMs ? { retentionMs } : {}),
    tuning: deps.exportSettings,
    ...(definition.webhook ? { webhookUrl: definition.webhook } : {}),
    definition,
  };
  return scheduleParts(deps, definition, tenant, {
    workflowType: scheduledViewExport,
    workflowId: `scheduled-view-export.${tenant}.${definition.id}`, // Temporal appends each run's time
    args: [input],
    staticSummary: `Lake run of schedule ${definition.id} (tenant ${tenant}): ${subjects.map((s) => `${s.name} (${s.sql ? 'SQL, full' : s.mode})`).join(', ')} into ${definition.destination}`,
  });
}

/** Names the problems of `work` as fields under `field` of the schedule's body. */
async function within<T>(field: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof OperationOutcomeError) for (const issue of err.issues) issue.expression = (issue.expression ?? ['']).map((e) => `${field}${e ? `.${e}` : ''}`);
    throw err;
  }
}
