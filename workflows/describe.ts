/**
 * What an export looks like in the Temporal Web UI: a one-line summary and markdown details of
 * the request (static, set at start), and the live progress (current details, set per
 * partition). Pure text; used by the API at kick-off and by the workflow.
 */
import type { ExportInput, ExportStatus } from './types';

const list = (items: string[], max = 6) => (items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`);

export function exportSummary(input: ExportInput, groupId?: string): string {
  const level = input.level === 'system' ? 'System' : input.level === 'patient' ? 'Patient' : `Group ${groupId ?? input.compartment?.groupId}`;
  const types = input.types ? list(input.types) : 'all types';
  const since = input.since ? ` since ${input.since}` : '';
  return `${level} export of ${types}${since} for ${input.owner} (tenant ${input.tenant})`;
}

export function exportDetails(input: ExportInput): string {
  const rows: Array<[string, string | undefined]> = [
    ['Request', input.request],
    ['Level', input.level],
    ['Group', input.compartment?.groupId],
    ['Patients', input.compartment?.patientIds ? list(input.compartment.patientIds.map((p) => `Patient/${p}`)) : undefined],
    ['Types', input.types ? input.types.join(', ') : 'all'],
    ['_since', input.since],
    ['_until', input.until],
    ['_typeFilter', input.typeFilters ? Object.values(input.typeFilters).flat().length + ' queries' : undefined],
    ['_elements', input.elements ? [...input.elements.all, ...Object.entries(input.elements.byType).flatMap(([t, e]) => e.map((x) => `${t}.${x}`))].join(', ') : undefined],
    ['Requested by', input.owner],
    ['Tenant', input.tenant],
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
