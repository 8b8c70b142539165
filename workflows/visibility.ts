/**
 * What an export looks like in the Temporal Web UI: a one-line summary and markdown details of
 * the request (static, set at start), and the live progress (current details, set per
 * partition). Pure text; used by the API at kick-off and by the workflow.
 */
import type { SearchAttributePair } from '@temporalio/common';
import {
  exportGroupKey,
  exportIdKey,
  exportLevelKey,
  exportOwnerKey,
  exportScheduleKey,
  exportSinceKey,
  exportStateKey,
  exportTenantKey,
  exportTypesKey,
} from './search-attribute-keys';
import type { ExportInput, ExportStatus } from '../src/contracts/bulk-export';
import type { ViewExportInput, ViewExportStatus } from '../src/contracts/view-export';
import type { CompartmentFilter } from '../src/contracts/export-window';

const list = (items: string[], max = 6) => (items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`);

/** The selected patients in words: a kept list by its size, an inline one by its ids. */
function patientsText(compartment: CompartmentFilter | undefined): string | undefined {
  if (compartment?.patientList) return `${compartment.patientList.count} listed patients`;
  return compartment?.patientIds ? list(compartment.patientIds.map((p) => `Patient/${p}`)) : undefined;
}

export function exportSummary(input: ExportInput): string {
  const level = input.level === 'system' ? 'System' : input.level === 'patient' ? 'Patient' : `Group ${input.window.compartment?.groupId}`;
  const types = input.types ? list(input.types) : 'all types';
  const since = input.window.since ? ` since ${input.window.since}` : '';
  return `${level} export of ${types}${since} for ${input.owner} (tenant ${input.window.tenant}${input.scheduleId ? `, schedule ${input.scheduleId}` : ''})`;
}

export function exportDetails(input: ExportInput): string {
  const rows: Array<[string, string | undefined]> = [
    ['Request', input.request],
    ['Level', input.level],
    ['Group', input.window.compartment?.groupId],
    ['Patients', patientsText(input.window.compartment)],
    ['Types', input.types ? input.types.join(', ') : 'all'],
    ['_since', input.window.since],
    ['_until', input.window.until],
    ['_typeFilter', input.typeFilters ? Object.values(input.typeFilters).flat().length + ' queries' : undefined],
    ['_elements', input.elements ? [...input.elements.all, ...Object.entries(input.elements.byType).flatMap(([t, e]) => e.map((x) => `${t}.${x}`))].join(', ') : undefined],
    ['Requested by', input.owner],
    ['Tenant', input.window.tenant],
    ['Schedule', input.scheduleId],
  ];
  return ['| | |', '| --- | --- |', ...rows.filter(([, v]) => v !== undefined).map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

/** Progress as markdown: phase, totals, and per type resources and parts. */
export function progressDetails(status: ExportStatus, partsByType: ReadonlyMap<string, number> = new Map()): string {
  if (status.phase === 'planning') return '**Planning**: fixing transactionTime and cutting partitions';
  const types = Object.entries(status.types);
  const done = types.reduce((n, [, t]) => n + t.exported, 0);
  const total = types.reduce((n, [, t]) => n + t.total, 0);
  const parts = partsByType;
  return [
    `**${status.phase === 'completed' ? 'Completed' : 'Exporting'}**: ${done} of ${total} resources, ${status.partitionsDone} of ${status.partitionsTotal} partitions` +
      (status.transactionTime ? `, transactionTime ${status.transactionTime}` : ''),
    '',
    '| type | resources | of | files |',
    '| --- | ---: | ---: | ---: |',
    ...types.map(([type, t]) => `| ${type} | ${t.exported} | ${t.total} | ${parts.get(type) ?? '-'} |`),
  ].join('\n');
}

/** How an export workflow is started, from the API or a scheduled run: the UI texts, search attributes and memo. */
export function exportStartOptions(input: ExportInput) {
  const groupId = input.window.compartment?.groupId;
  return {
    staticSummary: exportSummary(input),
    staticDetails: exportDetails(input),
    typedSearchAttributes: [
      { key: exportIdKey, value: input.exportId },
      { key: exportLevelKey, value: input.level },
      ...(groupId ? [{ key: exportGroupKey, value: groupId }] : []),
      { key: exportOwnerKey, value: input.owner },
      { key: exportTenantKey, value: input.window.tenant },
      { key: exportStateKey, value: 'running' },
      { key: exportTypesKey, value: input.types ?? ['*'] },
      ...(input.window.since ? [{ key: exportSinceKey, value: new Date(input.window.since) }] : []),
      ...(input.scheduleId ? [{ key: exportScheduleKey, value: input.scheduleId }] : []),
    ] as SearchAttributePair[],
    // What finds an export, never what it selects: no patient ids, no query text (those stay in
    // the encrypted input and details).
    memo: {
      level: input.level,
      group: groupId ?? null,
      types: input.types ?? 'all',
      since: input.window.since ?? null,
      until: input.window.until ?? null,
      patients: input.window.compartment?.patientList?.count ?? input.window.compartment?.patientIds?.length ?? null,
      typeFilters: input.typeFilters ? Object.values(input.typeFilters).flat().length : 0,
      elements: input.elements !== undefined,
      includeAssociatedData: input.associatedProvenance ?? null,
      organizeOutputBy: input.organizeOutputBy ?? null,
      owner: input.owner,
      tenant: input.window.tenant,
      ...(input.scheduleId ? { schedule: input.scheduleId, outputPrefix: input.outputPrefix ?? null } : {}),
    },
  };
}

/** A `$sql-export` in the Web UI: its views and format (static), rows per view (live). */
export function viewExportStartOptions(input: ViewExportInput) {
  const groupId = input.window.compartment?.groupId;
  const views = input.views.map((v) => `${v.name} (${v.resource})`);
  const rows: Array<[string, string | undefined]> = [
    ['Request', input.request],
    ['Views', views.join(', ')],
    ['Format', input.format],
    ['Group', groupId],
    ['Patients', patientsText(input.window.compartment)],
    ['_since', input.window.since],
    ['clientTrackingId', input.clientTrackingId],
    ['Requested by', input.owner],
    ['Tenant', input.window.tenant],
  ];
  return {
    staticSummary: `SQL on FHIR export of ${list(views)} as ${input.format} for ${input.owner} (tenant ${input.window.tenant})`,
    staticDetails: ['| | |', '| --- | --- |', ...rows.filter(([, v]) => v !== undefined).map(([k, v]) => `| ${k} | ${v} |`)].join('\n'),
    typedSearchAttributes: [
      { key: exportIdKey, value: input.exportId },
      { key: exportLevelKey, value: input.level },
      ...(groupId ? [{ key: exportGroupKey, value: groupId }] : []),
      { key: exportOwnerKey, value: input.owner },
      { key: exportTenantKey, value: input.window.tenant },
      { key: exportStateKey, value: 'running' },
      { key: exportTypesKey, value: [...new Set(input.views.map((v) => v.resource))] },
      ...(input.window.since ? [{ key: exportSinceKey, value: new Date(input.window.since) }] : []),
    ] as SearchAttributePair[],
    memo: { views: input.views.map((v) => v.name), format: input.format, since: input.window.since ?? null, owner: input.owner, tenant: input.window.tenant },
  };
}

/** Progress of a `$sql-export` as markdown: per view, resources read and rows written. */
export function viewProgressDetails(status: ViewExportStatus): string {
  if (status.phase === 'planning') return '**Planning**: fixing transactionTime and cutting partitions';
  const views = Object.entries(status.views);
  return [
    `**${status.phase === 'completed' ? 'Completed' : 'Exporting'}**: ${status.partitionsDone} of ${status.partitionsTotal} partitions` +
      (status.transactionTime ? `, transactionTime ${status.transactionTime}` : ''),
    '',
    '| view | type | resources read | of | rows |',
    '| --- | --- | ---: | ---: | ---: |',
    ...views.map(([name, v]) => `| ${name} | ${v.resource} | ${v.read} | ${v.resources} | ${v.rows} |`),
  ].join('\n');
}
