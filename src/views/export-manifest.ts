/**
 * What `$sql-export` answers, as `Parameters`: the kick-off's acknowledgement, a poll's interim
 * status, and the result URL's manifest (one `output` per view, one `location` per part file).
 * Pure.
 */
import type { ViewExportStatus } from '../contracts/view-export';

type Parameter = { name: string; [value: string]: unknown };
const parameters = (parameter: (Parameter | undefined)[]) => ({ resourceType: 'Parameters', parameter: parameter.filter((p): p is Parameter => p !== undefined) });

export const acceptedParameters = (exportId: string, statusUrl: string, clientTrackingId?: string) =>
  parameters([
    { name: 'exportId', valueString: exportId },
    clientTrackingId === undefined ? undefined : { name: 'clientTrackingId', valueString: clientTrackingId },
    { name: 'status', valueCode: 'accepted' },
    { name: 'location', valueUri: statusUrl },
  ]);

/** Seconds left at the rate so far (undefined before anything was read). */
export function estimatedSecondsLeft(status: ViewExportStatus, now: number): number | undefined {
  const views = Object.values(status.views);
  const total = views.reduce((n, v) => n + v.resources, 0);
  const read = views.reduce((n, v) => n + v.read, 0);
  if (!status.startedAt || read === 0 || total === 0) return undefined;
  const elapsed = (now - Date.parse(status.startedAt)) / 1000;
  return Math.max(0, Math.round((elapsed * (total - read)) / read));
}

export function progressText(status: ViewExportStatus | undefined): string {
  if (!status || status.phase === 'planning') return 'planning';
  const views = Object.values(status.views);
  const read = views.reduce((n, v) => n + v.read, 0);
  const total = views.reduce((n, v) => n + v.resources, 0);
  return `${status.partitionsDone} of ${status.partitionsTotal} partitions, ${read} of ${total} resources read`;
}

export function inProgressParameters(exportId: string, status: ViewExportStatus | undefined, now: number) {
  const left = status && estimatedSecondsLeft(status, now);
  return parameters([
    { name: 'exportId', valueString: exportId },
    status?.clientTrackingId === undefined ? undefined : { name: 'clientTrackingId', valueString: status.clientTrackingId },
    { name: 'status', valueCode: 'in-progress' },
    status?.startedAt ? { name: 'exportStartTime', valueInstant: status.startedAt } : undefined,
    left === undefined ? undefined : { name: 'estimatedTimeRemaining', valueInteger: left },
  ]);
}

/** The completed export's manifest; `fileUrl` turns a file key into the URL clients download it from. */
export function manifestParameters(status: ViewExportStatus, statusUrl: string, fileUrl: (key: string) => string) {
  const durationSeconds = Math.round((Date.parse(status.completedAt!) - Date.parse(status.startedAt!)) / 1000);
  return parameters([
    { name: 'exportId', valueString: status.exportId },
    status.clientTrackingId === undefined ? undefined : { name: 'clientTrackingId', valueString: status.clientTrackingId },
    { name: 'status', valueCode: 'completed' },
    { name: 'location', valueUri: statusUrl },
    { name: 'cancelUrl', valueUri: statusUrl },
    { name: '_format', valueCode: status.format },
    { name: 'exportStartTime', valueInstant: status.startedAt },
    { name: 'exportEndTime', valueInstant: status.completedAt },
    { name: 'exportDuration', valueInteger: durationSeconds },
    ...Object.entries(status.views).map(([name, view]) => ({
      name: 'output',
      part: [{ name: 'name', valueString: name }, ...view.parts.map((p) => ({ name: 'location', valueUri: fileUrl(p.key) }))],
    })),
  ]);
}
