/**
 * A recurring export as the admin API and CLI describe it, checked into what its Temporal
 * Schedule needs: when it runs, and the export each run makes. Pure: no I/O (the Group's
 * existence is checked by the route).
 */
import { OperationOutcomeError } from '../fhir/outcome-error';
import { parseInstant, parseKickoffParameters, type KickoffRequest, type RawParameters } from '../fhir/kickoff-parameters';
import { FHIR_ID } from '../fhir/resource-validation';
import type { ExportLevel } from '../contracts/bulk-export';
import type { ScheduleDefinition } from '../contracts/scheduled-export';
import { parseViewExportRequest, type ViewExportRequest } from '../views/export-request';

export const SCHEDULE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const DURATION = /^(\d+)(s|m|h|d)$/;
const PREFIX = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;
const SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
/** Kick-off parameters a schedule may carry; `_since` is the chain's, `_until` and paging make no sense here. */
const SCHEDULE_PARAMETERS = new Set(['_type', '_typeFilter', '_elements', '_outputFormat', 'includeAssociatedData', 'organizeOutputBy']);

/** The definition as stored in the schedule's memo and returned by the API (normalized). */

export type CheckedSchedule =
  | { kind: 'export'; definition: ScheduleDefinition; request: KickoffRequest; retentionMs?: number }
  | { kind: 'lake'; definition: ScheduleDefinition; viewRequest: ViewExportRequest; retentionMs?: number };

/** Fields of an `$export` schedule that a lake schedule (sqlExport) has no use for, and the reverse. */
const EXPORT_ONLY = ['level', 'group', 'parameters', 'outputPrefix'];
const LAKE_ONLY = ['destination', 'mode', 'fullEvery'];

const bad = (message: string, field: string) => OperationOutcomeError.invalid(message, field);

function text(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.trim() === '') throw bad(`${field} must be a non-empty string`, field);
  return value.trim();
}

export function durationSeconds(value: string, field: string): number {
  const match = DURATION.exec(value);
  if (!match || Number(match[1]) === 0) throw bad(`${field} must be a whole number with s, m, h or d (e.g. 15m, 1d), got ${JSON.stringify(value)}`, field);
  return Number(match[1]) * SECONDS[match[2]];
}

/** Five cron fields (minute hour day-of-month month day-of-week), or a Temporal `@every`-free shorthand such as `@daily`. */
function checkCron(cron: string): void {
  if (/^@(yearly|annually|monthly|weekly|daily|hourly)$/.test(cron)) return;
  const fields = cron.split(/\s+/);
  if (fields.length !== 5 || !fields.every((f) => /^[0-9*,/\-A-Za-z?LW#]+$/.test(f))) {
    throw bad(`cron must have five fields (minute hour day-of-month month day-of-week), got ${JSON.stringify(cron)}`, 'cron');
  }
}

function checkTimeZone(zone: string): void {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
  } catch {
    throw bad(`timeZone must be an IANA time zone such as Europe/Berlin, got ${JSON.stringify(zone)}`, 'timeZone');
  }
}

function parametersOf(value: unknown): Record<string, string[]> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw bad('parameters must be an object of kick-off parameters', 'parameters');
  const out: Record<string, string[]> = {};
  for (const [name, raw] of Object.entries(value as Record<string, unknown>)) {
    if (name === '_since') throw bad('parameters._since is set by the schedule (each run exports what changed since the last); use start for the first run', 'parameters._since');
    if (!SCHEDULE_PARAMETERS.has(name)) throw bad(`parameters.${name} is not a kick-off parameter a schedule takes (${[...SCHEDULE_PARAMETERS].join(', ')})`, `parameters.${name}`);
    const values = Array.isArray(raw) ? raw : [raw];
    if (values.length === 0 || !values.every((v) => typeof v === 'string')) throw bad(`parameters.${name} must be a string or a list of strings`, `parameters.${name}`);
    out[name] = values as string[];
  }
  return out;
}

/** Checks a create or update body; `id` comes from the URL on update. */
export function checkScheduleDefinition(body: unknown, id?: string): CheckedSchedule {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw OperationOutcomeError.invalid('The body must be a JSON object describing the schedule');
  const b = body as Record<string, unknown>;
  const known = new Set(['id', 'every', 'cron', 'timeZone', 'level', 'group', 'parameters', 'start', 'outputPrefix', 'retention', 'webhook', 'paused', 'note', 'sqlExport', ...LAKE_ONLY]);
  for (const field of Object.keys(b)) if (!known.has(field)) throw bad(`Unknown field ${field} (fields: ${[...known].join(', ')})`, field);

  const scheduleId = id ?? text(b, 'id');
  if (!scheduleId) throw bad('id is required', 'id');
  if (!SCHEDULE_ID.test(scheduleId)) throw bad(`id must be 1 to 64 of A-Z, a-z, 0-9, _ and -, got ${JSON.stringify(scheduleId)}`, 'id');
  if (id !== undefined && b.id !== undefined && b.id !== id) throw bad(`id in the body (${JSON.stringify(b.id)}) differs from the URL's (${id})`, 'id');

  const every = text(b, 'every');
  const cron = text(b, 'cron');
  const timeZone = text(b, 'timeZone');
  if ((every === undefined) === (cron === undefined)) throw bad('Give exactly one of every (an interval such as 1h) and cron', every ? 'cron' : 'every');
  if (every) durationSeconds(every, 'every');
  if (cron) checkCron(cron);
  if (timeZone) {
    if (!cron) throw bad('timeZone applies to cron schedules only', 'timeZone');
    checkTimeZone(timeZone);
  }

  const startText = text(b, 'start');
  const start = startText ? parseInstant(startText, 'start') : undefined;
  const retention = text(b, 'retention');
  const retentionMs = retention ? durationSeconds(retention, 'retention') * 1000 : undefined;
  const webhook = text(b, 'webhook');
  if (webhook) checkWebhook(webhook);
  if (b.paused !== undefined && typeof b.paused !== 'boolean') throw bad('paused must be true or false', 'paused');
  const timing = { id: scheduleId, every, cron, timeZone, start, retention, webhook };
  if (b.sqlExport !== undefined) return { kind: 'lake', ...checkLakeFields(b, timing), retentionMs };
  for (const field of LAKE_ONLY) if (b[field] !== undefined) throw bad(`${field} belongs to a schedule of view exports (sqlExport)`, field);

  const level = (text(b, 'level') ?? 'system') as ExportLevel;
  if (!['system', 'patient', 'group'].includes(level)) throw bad(`level must be system, patient or group, got ${JSON.stringify(level)}`, 'level');
  const group = text(b, 'group');
  if (level === 'group' && !group) throw bad('group (a Group id) is required for a group-level schedule', 'group');
  if (level !== 'group' && group) throw bad('group is only for level group', 'group');
  if (group && !FHIR_ID.test(group)) throw bad(`group must be a FHIR id, got ${JSON.stringify(group)}`, 'group');

  const parameters = parametersOf(b.parameters);
  const raw: RawParameters = new Map(Object.entries(parameters));
  let request: KickoffRequest;
  try {
    request = parseKickoffParameters(raw, 'strict', level);
  } catch (err) {
    // Name the field as the body spells it.
    if (err instanceof OperationOutcomeError) for (const issue of err.issues) issue.expression = issue.expression?.map((e) => `parameters.${e}`);
    throw err;
  }

  const outputPrefix = text(b, 'outputPrefix') ?? `schedules/${scheduleId}`;
  if (!PREFIX.test(outputPrefix) || outputPrefix.length > 200) throw bad('outputPrefix must be path segments of A-Z, a-z, 0-9, _ and - separated by /', 'outputPrefix');
  return {
    kind: 'export',
    definition: { ...timing, level, group, parameters, outputPrefix },
    request,
    retentionMs,
  };
}

function checkWebhook(webhook: string): void {
  let url: URL | undefined;
  try {
    url = new URL(webhook);
  } catch {
    url = undefined;
  }
  if (!url || !['http:', 'https:'].includes(url.protocol)) throw bad(`webhook must be an http(s) URL, got ${JSON.stringify(webhook)}`, 'webhook');
}

/**
 * A lake schedule's own fields: `sqlExport` read exactly as a `$sql-export` kick-off body
 * (Parquet unless it names `_format`; no `_since`: the chain sets it), `destination`, `mode`,
 * `fullEvery`. Incremental views of a Group or patient list are refused: a patient who leaves
 * would leave rows no run removes.
 */
function checkLakeFields(b: Record<string, unknown>, timing: Pick<ScheduleDefinition, 'id' | 'every' | 'cron' | 'timeZone' | 'start' | 'retention' | 'webhook'>) {
  for (const field of EXPORT_ONLY) if (b[field] !== undefined) throw bad(`${field} belongs to a schedule of $export runs; a schedule of view exports (sqlExport) takes patient and group inside sqlExport`, field);
  if (timing.start) throw bad('start belongs to a schedule of $export runs: a schedule of view exports makes its tables whole on its first run', 'start');
  const sqlExport = b.sqlExport as Record<string, unknown>;
  let viewRequest: ViewExportRequest;
  try {
    viewRequest = parseViewExportRequest(sqlExport);
  } catch (err) {
    if (err instanceof OperationOutcomeError) for (const issue of err.issues) issue.expression = (issue.expression ?? ['']).map((e) => `sqlExport${e ? `.${e}` : ''}`);
    throw err;
  }
  const parts = (sqlExport.parameter ?? []) as Array<{ name?: unknown }>;
  if (!parts.some((p) => p?.name === '_format')) viewRequest.format = 'parquet';
  if (viewRequest.since) throw bad('sqlExport._since is set by the schedule (each run exports what changed since the last); use start for the first run', 'sqlExport._since');
  if (viewRequest.clientTrackingId) throw bad('sqlExport.clientTrackingId names one kick-off; a schedule has runs', 'sqlExport.clientTrackingId');
  const destination = text(b, 'destination') ?? `lake/${timing.id}`;
  if (!PREFIX.test(destination) || destination.length > 200) throw bad('destination must be path segments of A-Z, a-z, 0-9, _ and - separated by /', 'destination');
  const mode = text(b, 'mode') ?? 'incremental';
  if (mode !== 'incremental' && mode !== 'full') throw bad(`mode must be incremental or full, got ${JSON.stringify(mode)}`, 'mode');
  if (mode === 'incremental' && (viewRequest.groupId || viewRequest.patientIds)) {
    throw bad('Incremental view tables of a group or patients are not supported (a patient who leaves would leave rows no run removes); use mode full', 'mode');
  }
  const fullEvery = b.fullEvery;
  if (fullEvery !== undefined) {
    if (typeof fullEvery !== 'number' || !Number.isInteger(fullEvery) || fullEvery < 1 || fullEvery > 10_000) throw bad('fullEvery must be a whole number of runs from 1 to 10000', 'fullEvery');
    if (mode === 'full') throw bad('fullEvery applies to mode incremental (mode full rewrites every run)', 'fullEvery');
  }
  const definition: ScheduleDefinition = { ...timing, level: 'system', parameters: {}, outputPrefix: destination, sqlExport, destination, mode, ...(fullEvery !== undefined ? { fullEvery } : {}) };
  return { definition, viewRequest };
}

/** The kick-off request a schedule's runs stand for, as a path and query under the FHIR base. */
export function scheduledRequestPath(definition: ScheduleDefinition): string {
  const path = definition.level === 'system' ? '/$export' : definition.level === 'patient' ? '/Patient/$export' : `/Group/${definition.group}/$export`;
  const query = new URLSearchParams();
  for (const [name, values] of Object.entries(definition.parameters)) for (const value of values) query.append(name, value);
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}
